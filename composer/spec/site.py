"""Sites: the backbone-agnostic address of where a component attaches (grammar/site.lark).

Layer numbers are 1-based and inclusive, because papers say "layers 8-12": `blocks[8-12]` is five
blocks. Python-style slices (`8:12`) are refused with a hint, so the common case is hard to get wrong.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput

from composer.errors import Loc, SpecError

GRAMMAR = resources.files("composer") / "grammar" / "site.lark"  # ../grammar (see pyproject.toml)
LAST = -1


@dataclass(frozen=True)
class Site:
    backbone: str
    tower: str
    layers: tuple[tuple[int, int], ...] | None  # 1-based inclusive spans; LAST marks the last block; None: no blocks[]
    every: bool
    point: str
    text: str

    @property
    def at_blocks(self) -> bool:
        return self.every or self.layers is not None

    def resolve(self, depth: int, loc: Loc | None = None) -> list[int]:
        """0-based block indices this site selects in a tower of `depth` blocks."""
        if self.every:
            return list(range(depth))
        chosen: list[int] = []
        for first, last in self.layers or ():
            first = depth if first == LAST else first
            last = depth if last == LAST else last
            for n in (first, last):
                if not 1 <= n <= depth:
                    raise SpecError(f"layer {n} does not exist: {self.backbone}.{self.tower} has {depth} blocks",
                                    loc, expected=f"layers 1-{depth} (1-based, inclusive)")
            if last < first:
                raise SpecError(f"empty layer range {first}-{last} in {self.text}", loc,
                                hint=f"write the smaller layer first: {last}-{first}")
            chosen.extend(i - 1 for i in range(first, last + 1) if i - 1 not in chosen)
        return chosen


def spans(numbers: list[int]) -> list[str]:
    out: list[str] = []
    start = prev = None
    for n in sorted(numbers):
        if start is None:
            start = prev = n
        elif n == prev + 1:
            prev = n
        else:
            out.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = prev = n
    if start is not None:
        out.append(f"{start}" if start == prev else f"{start}-{prev}")
    return out


@functools.cache
def _parser() -> Lark:
    return Lark(GRAMMAR.read_text(encoding="utf-8"), parser="lalr", maybe_placeholders=True)


def _bound(tok: Tree | Token) -> int:
    if isinstance(tok, Tree):
        tok = tok.children[0] if tok.children else "last"
    return LAST if tok in (None, "last") else int(tok)


def parse_site(text: str, loc: Loc | None = None) -> Site:
    """Parse a site string; errors point into the string at `loc`."""
    def here(col: int) -> Loc | None:
        return Loc(loc.file, loc.line, loc.col + col - 1, 1) if loc else None

    try:
        tree = _parser().parse(text)
    except UnexpectedCharacters as e:
        ch = text[e.pos_in_stream] if e.pos_in_stream < len(text) else ""
        hint = None
        if ch == ":":
            m = re.search(r"\[(\d*):(\d*)\]", text)
            a, b = (int(m.group(1) or 0), m.group(2)) if m else (8, "12")
            hint = (f"layers are 1-based and inclusive: Python's [{a}:{b}] is "
                    f"blocks[{a + 1}-{b or 'last'}]")
        raise SpecError(f"bad site {text!r}: unexpected {ch!r}", here(e.column),
                        expected="<backbone>.<tower>.blocks[<layers>].<point>, layers like *, 3, 8-12, 1,5,9 or 10-last",
                        hint=hint) from None
    except UnexpectedInput as e:
        raise SpecError(f"bad site {text!r}", here(getattr(e, "column", 1)),
                        expected="<backbone>.<tower>.blocks[<layers>].<point>, e.g. clip.visual.blocks[1-12].mlp") from None
    backbone, tower, blocks, point = tree.children
    layers = None
    every = False
    if blocks is not None:
        selection = blocks.children[0]
        if selection.data == "every":
            every = True
        else:
            spans = []
            for item in selection.children:
                if item.data == "single":
                    spans.append((int(item.children[0]), int(item.children[0])))
                elif item.data == "last":
                    spans.append((LAST, LAST))
                else:
                    spans.append((int(item.children[0]), _bound(item.children[1])))
            layers = tuple(spans)
    point_name = ".".join(str(t) for t in point.children) if point is not None else ("block" if blocks else "output")
    return Site(str(backbone), str(tower), layers, every, point_name, text)

