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

    def drop_under(self, path: Path) -> None:
        n = len(path)
        for table in (self.values, self.keys):
            for p in [p for p in table if p[:n] == tuple(path) and len(p) > n]:
                del table[p]

    def copy_from(self, other: "SourceMap", prefix: Path = ()) -> None:
        n = len(prefix)
        for mine, theirs in ((self.values, other.values), (self.keys, other.keys)):
            for p, loc in theirs.items():
                if p[:n] == tuple(prefix):
                    mine[p] = loc


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
