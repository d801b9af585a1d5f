"""Inheritance and overrides: how a child spec, `--set` and `--unset` change a base spec.

The rules (documented in docs/language.md):
- mappings merge key by key, recursively;
- lists and scalars in the child replace the base's value whole (no list concatenation);
- a mapping whose `kind` (components, inputs) or `family` (backbones) differs from the base's replaces
  it whole, since the old params would not fit the new kind;
- `!delete` (YAML), `delete path` (text) or `--unset path` removes an inherited key; deleting a key that
  does not exist is an error.
"""

from __future__ import annotations

import copy
import difflib
from typing import Any

from composer.errors import Loc, SpecError
from composer.spec.document import DELETE, Document, Path, SourceMap

_IDENTITY_KEYS = ("kind", "family")


def _replaces_whole(base: Any, child: Any) -> bool:
    if not (isinstance(base, dict) and isinstance(child, dict)):
        return True
    return any(k in child and k in base and child[k] != base[k] for k in _IDENTITY_KEYS)


def _merge_into(base: dict, base_where: SourceMap, child: dict, child_where: SourceMap, path: Path) -> None:
    for key, value in child.items():
        here = path + (key,)
        if value is DELETE:
            if key not in base:
                raise SpecError(f"cannot delete '{'.'.join(map(str, here))}': it is not in the inherited spec",
                                child_where.key(here))
            base_where.drop_under(here, base.pop(key))
            base_where.values.pop(here, None)
            base_where.keys.pop(here, None)
            base_where.removed[here] = child_where.value(here)
            continue
        if key in base and not _replaces_whole(base[key], value):
            _merge_into(base[key], base_where, value, child_where, here)
            if here in child_where.keys:
                base_where.keys[here] = child_where.keys[here]
            continue
        if key in base:
            base_where.drop_under(here, base[key])
        base[key] = _strip_deletes(value, child_where, here)
        base_where.copy_from(child_where, here, value)


def _strip_deletes(value: Any, where: SourceMap, path: Path) -> Any:
    """A subtree that replaces (or adds to) the base must not contain deletions: there is nothing to delete."""
    if value is DELETE:
        raise SpecError(f"cannot delete '{'.'.join(map(str, path))}': it is not in the inherited spec",
                        where.key(path))
    if isinstance(value, dict):
        return {k: _strip_deletes(v, where, path + (k,)) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_deletes(v, where, path + (i,)) for i, v in enumerate(value)]
    return value


def merge(base: Document, child: Document) -> Document:
    """`child` applied on top of `base` (neither is modified)."""
    data = copy.deepcopy(base.data)
    where = SourceMap(dict(base.where.values), dict(base.where.keys),
                      {**base.where.removed, **child.where.removed})
    _merge_into(data, where, child.data, child.where, ())
    return Document(data, where, child.file)


def set_path(doc: Document, path: Path, value: Any, loc: Loc) -> str | None:
    """`--set a.b.c=value`: create intermediate mappings as needed, replace the last key. Every place the
    option creates is located at the option. Returns a hint naming the nearest existing path when the option
    creates a key close to one that exists (likely a misspelling), else None."""
    hint = None
    node = doc.data
    for i, key in enumerate(path):
        if key not in node and hint is None:
            close = difflib.get_close_matches(str(key), [str(k) for k in node], n=1, cutoff=0.6)
            if close:
                hint = "did you mean " + ".".join(map(str, path[:i] + (close[0],))) + "?"
        if i == len(path) - 1:
            break
        child = node.get(key)
        if child is None:
            child = node[key] = {}
            doc.where.values[tuple(path[: i + 1])] = loc
            doc.where.keys[tuple(path[: i + 1])] = loc
        if not isinstance(child, dict):
            raise SpecError(f"bad path '{'.'.join(path)}': '{'.'.join(path[: i + 1])}' is a value, not a section",
                            loc, hint="lists are replaced whole, e.g. --set train.betas=[0.9,0.98]")
        node = child
    if path[-1] in node:
        doc.where.drop_under(path, node[path[-1]])
    node[path[-1]] = value
    doc.where.values[tuple(path)] = loc
    doc.where.keys[tuple(path)] = loc
    return hint


def unset_path(doc: Document, path: Path, loc: Loc) -> None:
    node = doc.data
    for key in path[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, dict) or path[-1] not in node:
        raise SpecError(f"cannot unset '{'.'.join(path)}': the spec has no such key", loc)
    doc.where.drop_under(path, node.pop(path[-1]))
    doc.where.values.pop(tuple(path), None)
    doc.where.keys.pop(tuple(path), None)
    doc.where.removed[tuple(path)] = loc
