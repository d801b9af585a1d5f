"""What changed between two specs, path by path, at the IR level (after `extends`, `--set` and defaults).

Comparing the validated IR rather than the files means that two spellings of one value (`1e-3` and
`0.001`, YAML and the text syntax, a value inherited or written again) are no change, and that a value
left to its default is compared with its default. Mappings are compared key by key and lists element by
element (`site[1]`: the merge rules replace a list whole, but a reader wants to see which entry moved),
scalars by type and value: `true` is not `1` and `1` is not `1.0` (a kind's free-form params receive them
as written). A mapping present on one side only is one change, not one per leaf.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from composer.errors import Loc
from composer.spec.ir import Spec

ABSENT = None  # the value of a path on the side that does not have it (an optional field unset is None too)


@dataclass(frozen=True)
class Change:
    """One path whose value differs. `old_at`/`new_at`: where each side's value was written (None: a
    default); on the side without the path, where the key was deleted, when a file or option deleted it."""

    path: tuple[Any, ...]
    old: Any
    new: Any
    old_at: Loc | None
    new_at: Loc | None

    @property
    def dotted(self) -> str:
        """The path as people write it: keys joined by dots, list positions in brackets (`site[1]`)."""
        out = ""
        for part in self.path:
            out += f"[{part}]" if isinstance(part, Index) else f".{part}" if out else str(part)
        return out

    @property
    def change(self) -> str:
        """'added', 'removed' or 'changed'."""
        return "added" if self.old is ABSENT else "removed" if self.new is ABSENT else "changed"

    def as_json(self) -> dict[str, Any]:
        return {"path": self.dotted, "change": self.change, "old": self.old, "new": self.new,
                "old_at": str(self.old_at) if self.old_at else None,
                "new_at": str(self.new_at) if self.new_at else None}


class Index(int):
    """A list position in a change's path (a mapping key may be a number too, so positions are marked)."""


def _walk(old: Any, new: Any, path: tuple[Any, ...], out: list[tuple[tuple[Any, ...], Any, Any]]) -> None:
    """Recursive over the two validated IR dumps: their depth is bounded by limits.MAX_DEPTH (the front ends
    refuse deeper documents before building them), far below Python's recursion limit."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(k for k in new if k not in old)]:
            _walk(old.get(key, ABSENT), new.get(key, ABSENT), path + (key,), out)
    elif isinstance(old, list) and isinstance(new, list):
        for i in range(max(len(old), len(new))):
            _walk(old[i] if i < len(old) else ABSENT, new[i] if i < len(new) else ABSENT, path + (Index(i),), out)
    elif type(old) is not type(new) or old != new:
        out.append((path, old, new))


def diff_specs(a: Spec, b: Spec) -> list[Change]:
    """Every path whose value differs between `a` (old) and `b` (new), in the order of the IR's fields."""
    found: list[tuple[tuple[Any, ...], Any, Any]] = []
    _walk(a.model_dump(mode="json", by_alias=True), b.model_dump(mode="json", by_alias=True), (), found)
    return [Change(path, old, new, _at(a, path, old), _at(b, path, new)) for path, old, new in found]


def _at(spec: Spec, path: tuple[Any, ...], value: Any) -> Loc | None:
    """Where the value at `path` was written; a list element without its own location (a --set of the whole
    list) is where its list was."""
    if value is ABSENT:
        return spec.removed_at(*path)
    at = spec.written_at(*path)
    while at is None and path and isinstance(path[-1], Index):
        path = path[:-1]
        at = spec.written_at(*path)
    return at
