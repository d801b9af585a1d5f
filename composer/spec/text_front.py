"""The text front end: the compact syntax of grammar/spec.lark, lowered to the same document tree as YAML.

Each statement fills one place of the tree (`backbone clip: clip(...)` fills `backbones.clip`), so the
text and YAML forms of a spec validate through exactly the same IR and give the same errors.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from composer.errors import Loc, SpecError
from composer.spec import comments, limits
from composer.spec.document import DELETE, Document, Path, SourceMap
from composer.uses import USES

GRAMMAR = resources.files("composer") / "grammar" / "spec.lark"  # ../grammar (see pyproject.toml)

_TOKEN_WORDS = {
    "NAME": "a name", "DOTTED": "a dotted name", "SITE": "a site such as clip.visual.blocks[1-12].mlp",
    "STRING": 'a "string"', "NUMBER": "a number", "LPAR": "'('", "RPAR": "')'", "LBRACE": "'{'",
    "RBRACE": "'}'", "LSQB": "'['", "RSQB": "']'", "COMMA": "','", "EQUAL": "'='", "COLON": "':'",
    "USE": f"a use ({', '.join(USES)})", "FROZEN": "'frozen'",
    "$END": "end of file",
}


_COMMENTS: list[Token] = []  # filled by the lexer during one parse (the grammar ignores COMMENT)


@functools.cache
def parser() -> Lark:
    uses = "USE: " + " | ".join(f'"{u}"' for u in USES) + "\n"  # the one list of uses (composer/uses.py)
    return Lark(GRAMMAR.read_text(encoding="utf-8") + uses, parser="lalr", propagate_positions=True,
                maybe_placeholders=True, lexer_callbacks={"COMMENT": _COMMENTS.append})


def _expected(tokens) -> str:
    names = sorted({_TOKEN_WORDS.get(t, repr(t.lower()) if t.isupper() else t) for t in tokens})
    if len(names) > 8:
        return ", ".join(names[:8]) + ", ..."
    return ", ".join(names)


def _syntax_error(e: UnexpectedInput, text: str, file: str) -> SpecError:
    line, col = getattr(e, "line", 1), getattr(e, "column", 1)
    if isinstance(e, UnexpectedEOF) or (isinstance(e, UnexpectedToken) and e.token.type == "$END"):
        lines = text.splitlines() or [""]
        loc = Loc(file, len(lines), len(lines[-1]) + 1)
        return SpecError("unexpected end of file", loc, expected=_expected(e.expected))
    if isinstance(e, UnexpectedToken):
        tok = e.token
        loc = Loc(file, line, col, max(1, len(str(tok))))
        hint = None
        if tok.type == "NAME" and "LPAR" in e.expected:
            hint = "arguments go in parentheses: kind(name=value, ...)"
        return SpecError(f"unexpected {str(tok)!r}", loc, expected=_expected(e.expected), hint=hint)
    if isinstance(e, UnexpectedCharacters):
        ch = text[e.pos_in_stream] if e.pos_in_stream < len(text) else ""
        hint = "strings use double quotes" if ch == "'" else None
        return SpecError(f"unexpected character {ch!r}", Loc(file, line, col),
                         expected=_expected(e.allowed) if e.allowed else None, hint=hint)
    return SpecError(f"syntax error: {e}", Loc(file, line, col))


class _Lowering:
    def __init__(self, file: str):
        self.file = file
        self.data: dict[str, Any] = {}
        self.where = SourceMap()
        self.spellings: dict[Path, str] = {}
        self.blocks: list[comments.Anchor] = []  # `train {` and the like, which comments can precede

    # -- locations
    def loc(self, item: Tree | Token) -> Loc:
        if isinstance(item, Token):
            return Loc(self.file, item.line, item.column, max(1, len(item)))
        meta = item.meta
        length = meta.end_column - meta.column if meta.end_line == meta.line else 1
        return Loc(self.file, meta.line, meta.column, max(1, length))

    def put(self, path: Path, value: Any, value_at: Tree | Token, key_at: Tree | Token | None = None,
            replace: bool = False) -> None:
        """Store `value` at `path`; a second definition of the same place is an error unless `replace`."""
        node = self.data
        for i, key in enumerate(path[:-1]):
            child = node.get(key)
            if child is DELETE or child is None:
                child = node[key] = {}
            elif not isinstance(child, dict):
                raise SpecError(f"'{'.'.join(map(str, path[: i + 1]))}' is not a section that has fields",
                                self.loc(key_at or value_at))
            node = child
        last = path[-1]
        if last in node and not replace:
            first = self.where.key(path)
            raise SpecError(f"'{'.'.join(map(str, path))}' is defined twice", self.loc(key_at or value_at),
                            hint=f"first defined at line {first.line}" if first else None)
        if last in node:
            self.where.drop_under(path, node[last])
        node[last] = value
        self.where.values[path] = self.loc(value_at)
        self.where.keys[path] = self.loc(key_at or value_at)

    # -- values
    def value(self, item: Tree, path: Path) -> Any:
        kind = item.data
        tok = item.children[0] if item.children else None
        self.where.values[path] = self.loc(item)
        if kind == "string":
            return json.loads(tok)
        if kind == "number":
            self.spellings[path] = str(tok)
            return limits.number(str(tok), self.loc(tok))
        if kind == "true":
            return True
        if kind == "false":
            return False
        if kind == "null":
            return None
        if kind == "word":
            return str(tok)
        if kind == "list":
            return [self.value(v, path + (i,)) for i, v in enumerate(c for c in item.children if c is not None)]
        if kind in ("map", "kwargs"):
            return self.pairs(item, path)
        raise AssertionError(kind)

    def pairs(self, item: Tree | None, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if item is None:
            return out
        for pair in (c for c in item.children if isinstance(c, Tree) and c.data == "pair"):
            key_tok, val = pair.children
            key = str(key_tok)
            if key in out:
                first = self.where.keys[path + (key,)]
                raise SpecError(f"duplicate key '{key}'", self.loc(key_tok),
                                hint=f"'{key}' is already set at line {first.line}")
            self.where.keys[path + (key,)] = self.loc(key_tok)
            out[key] = self.value(val, path + (key,))
        return out

    # -- statements
    def statement(self, st: Tree) -> None:
        getattr(self, st.data)(st, *st.children)
        if st.data.endswith("_block"):
            self.blocks.append((st.meta.line, st.meta.column, (st.data.removesuffix("_block"),)))

    def _header(self, key: str, st: Tree, tok: Token) -> None:
        self.put((key,), json.loads(tok), tok, st)

    def name_stmt(self, st, tok):
        self._header("name", st, tok)

    def description_stmt(self, st, tok):
        self._header("description", st, tok)

    def paper_stmt(self, st, tok):
        self._header("paper", st, tok)

    def extends_stmt(self, st, tok):
        self._header("extends", st, tok)

    def predict_stmt(self, st, tok):
        self.put(("predict",), str(tok), tok, st)

    def input_stmt(self, st, name, kind, kwargs):
        fields = self.pairs(kwargs, ("inputs", str(name)))
        self.put(("inputs", str(name)), {"kind": str(kind), **fields}, st, name)
        self.where.values[("inputs", str(name), "kind")] = self.loc(kind)

    def backbone_stmt(self, st, name, family, kwargs):
        fields = self.pairs(kwargs, ("backbones", str(name)))
        self.put(("backbones", str(name)), {"family": str(family), **fields}, st, name)
        self.where.values[("backbones", str(name), "family")] = self.loc(family)

    def component_stmt(self, st, name, kind, kwargs, attach, frozen):
        path = ("components", str(name))
        body: dict[str, Any] = {"kind": str(kind)}
        if kwargs is not None:
            body["params"] = self.pairs(kwargs, path + ("params",))
            self.where.values[path + ("params",)] = self.loc(kwargs)
        if attach is not None:
            sites, use = attach.children
            tokens = [t for t in sites.children if isinstance(t, Token)]
            listed = sites.data == "site_list"
            body["site"] = [str(t) for t in tokens] if listed else str(tokens[0])
            self.where.values[path + ("site",)] = self.loc(sites)
            if listed:
                for i, t in enumerate(tokens):
                    self.where.values[path + ("site", i)] = self.loc(t)
            if use is not None:
                body["use"] = str(use)
                self.where.values[path + ("use",)] = self.loc(use)
        if frozen is not None:
            body["frozen"] = True
        self.put(path, body, st, name)
        self.where.values[path + ("kind",)] = self.loc(kind)

    def flow_block(self, st, *steps):
        for step in steps:
            out, call, *args = step.children
            path = ("flow", str(out))
            ins = [str(a) for a in args if a is not None]
            self.put(path, {"call": str(call), "in": ins}, step, out)
            self.where.values[path + ("call",)] = self.loc(call)
            for i, a in enumerate(a for a in args if a is not None):
                self.where.values[path + ("in", i)] = self.loc(a)

    def _fill(self, path: Path, body: Tree | None) -> None:
        """Put each `name = value` pair of a block at `path.name` (a repeated name is an error)."""
        for pair in (c for c in (body.children if body else []) if isinstance(c, Tree) and c.data == "pair"):
            key_tok, val = pair.children
            key_path = path + (str(key_tok),)
            self.put(key_path, self.value(val, key_path), val, key_tok)

    def losses_block(self, st, body):
        self._fill(("losses",), body)

    def train_block(self, st, body):
        self._fill(("train",), body)

    def reported_block(self, st, body):
        self._fill(("reported",), body)

    def stage_stmt(self, st, name, body):
        fields = self.pairs(body, ("stages", str(name)))
        self.put(("stages", str(name)), fields, st, name)

    def set_stmt(self, st, dotted, val):
        path = tuple(str(dotted).split("."))
        limits.check_path(path, None, self.loc(dotted))  # the value's brackets are bounded already
        value = self.value(val, path)
        limits.check_path(path, value, self.loc(dotted))
        self.put(path, value, val, dotted, replace=True)

    def delete_stmt(self, st, dotted):
        path = tuple(str(dotted).split("."))
        limits.check_path(path, None, self.loc(dotted))
        self.put(path, DELETE, dotted, dotted, replace=True)


def read_text(text: str, file: str, keep_comments: bool = True) -> Document:
    """Parse the text syntax into a `Document` (data tree plus source map), within the limits of limits.py."""
    limits.check_size(text, file)
    limits.check_text_depth(text, file)
    _COMMENTS.clear()
    try:
        tree = parser().parse(text)
    except UnexpectedInput as e:
        raise _syntax_error(e, text, file) from None
    found = [(t.line, t.column, str(t).rstrip()) for t in _COMMENTS]
    lowering = _Lowering(file)
    for st in tree.children:
        lowering.statement(st)
    if not lowering.data:
        raise limits.empty(file)
    if not keep_comments:  # only `fmt` writes them back
        return Document(lowering.data, lowering.where, file, spellings=lowering.spellings)
    notes, trailing = comments.attach(found, comments.anchors(lowering.where) + lowering.blocks)
    return Document(lowering.data, lowering.where, file, comments=notes, trailing=trailing,
                    spellings=lowering.spellings)
