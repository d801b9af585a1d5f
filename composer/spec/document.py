"""A spec document before validation: a plain tree of dicts, lists and scalars, plus where each part came from.

Both front ends (YAML and the text syntax) produce a `Document`; inheritance and `--set` overrides merge
documents; only then is the tree validated into the IR. Keeping locations beside the tree (instead of
inside it) lets the merge rules stay plain dictionary operations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from composer.errors import Loc

Path = tuple[Any, ...]


class _Delete:
    """Marks a key to remove from the inherited spec (`!delete` in YAML, `delete path` in text)."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "DELETE"


DELETE = _Delete()


@dataclass
class SourceMap:
    """Locations of values and of mapping keys, by path from the document root; `removed`: where an inherited
    key was deleted (`!delete`, `delete`, `--unset`), so `composer diff` can say which file removed it."""

    values: dict[Path, Loc] = field(default_factory=dict)
    keys: dict[Path, Loc] = field(default_factory=dict)
    removed: dict[Path, Loc] = field(default_factory=dict)

    def value(self, path: Path) -> Loc | None:
        """The location of the value at `path`, or of its nearest located ancestor."""
        path = tuple(path)
        while True:
            if path in self.values:
                return self.values[path]
            if not path:
                return None
            path = path[:-1]

    def written(self, path: Path) -> Loc | None:
        """Where the value at `path` itself was written: its own location, else its key's, else (a mapping written
        entry by entry, as the text syntax's `reported` block) its first entry's; None for a default. Never an
        ancestor's location, unlike `value`."""
        path = tuple(path)
        if path in self.values or path in self.keys:
            return self.values.get(path) or self.keys[path]
        inside = [loc for p, loc in self.values.items() if p[:len(path)] == path and len(p) > len(path)]
        return min(inside, key=lambda loc: (loc.line, loc.col)) if inside else None

    def key(self, path: Path) -> Loc | None:
        """The location of the key that names `path` (falls back to the value's location)."""
        return self.keys.get(tuple(path)) or self.value(path)

    def drop_under(self, path: Path, value: Any) -> None:
        """Forget the locations strictly inside `value`, the value that stood at `path`. Guided by the value,
        not by a scan of every location: a merge or a run of `set`s replaces many keys, and a scan per key
        made a wide document quadratic."""
        for p in inside(value, tuple(path))[1:]:
            self.values.pop(p, None)
            self.keys.pop(p, None)

    def copy_from(self, other: "SourceMap", prefix: Path, value: Any) -> None:
        """Take `other`'s locations of `value` (the value at `prefix` in other's document) and inside it."""
        for p in inside(value, tuple(prefix)):
            if p in other.values:
                self.values[p] = other.values[p]
            if p in other.keys:
                self.keys[p] = other.keys[p]


def inside(value: Any, path: Path) -> list[Path]:
    """`path` and the path of every mapping entry and list item inside `value` (walked with a stack)."""
    out, stack = [], [(value, path)]
    while stack:
        node, at = stack.pop()
        out.append(at)
        if isinstance(node, dict):
            stack.extend((v, at + (k,)) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, at + (i,)) for i, v in enumerate(node))
    return out


@dataclass
class Comment:
    """The comments a person wrote around one entry: full lines above it, and one at the end of its line.
    Each is kept as written, from its `#` on."""

    before: list[str] = field(default_factory=list)
    after: str | None = None


@dataclass
class Document:
    data: dict[str, Any]
    where: SourceMap
    file: str
    hints: dict[str, str] = field(default_factory=dict)  # source (e.g. "<--set #1>") -> hint for its errors
    # What `composer fmt` writes back beside the data; validation never reads these.
    comments: dict[Path, Comment] = field(default_factory=dict)  # by the path of the key or list item
    trailing: list[str] = field(default_factory=list)  # comments after the last entry
    spellings: dict[Path, str] = field(default_factory=dict)  # numbers as written ("1e-3"), by path
