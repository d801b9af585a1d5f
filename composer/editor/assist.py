"""Completion, hover and go-to-definition for YAML specs, read from the shipped schema (schema.py), so they
answer at once: no registry, no torch. A union is resolved by the `kind` or `family` written beside the cursor."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer.editor import schema as spec_schema
from composer.editor.outline import Context, Entry, outline, value_at, word_at
from composer.spec.shipped import shipped

SECTIONS_WITH_NAMES = ("flow", "components", "inputs", "backbones", "stages")  # where a name is defined


@dataclass(frozen=True)
class Item:
    label: str
    detail: str
    documentation: str
    is_key: bool


@functools.cache
def _schema() -> dict[str, Any]:
    return spec_schema.shipped()


def _def(ref: str) -> dict[str, Any]:
    return _schema()["$defs"][ref.rsplit("/", 1)[-1]]


def _branches(node: dict[str, Any]) -> list[dict[str, Any]]:
    """The alternatives of a node, references resolved, null left out."""
    if "$ref" in node:
        return _branches({**_def(node["$ref"]), **{k: v for k, v in node.items() if k != "$ref"}})
    for key in ("anyOf", "oneOf"):
        if key in node:
            return [b for alt in node[key] for b in _branches(alt) if b.get("type") != "null"]
    return [node]


def _step(nodes: list[dict[str, Any]], key: str) -> list[dict]:
    """The schema nodes under `key` of `nodes`."""
    out: list[dict] = []
    for node in nodes:
        if key in node.get("properties", {}):
            out.extend(_branches(node["properties"][key]))
        for value in node.get("patternProperties", {}).values():
            out.extend(_branches(value))
    return out


def _narrow(branches: list[dict], entries: list[Entry], here: tuple[str, ...]) -> list[dict]:
    tags = {b["properties"][t]["const"]: b for b in branches for t in ("kind", "family")
            if "const" in b.get("properties", {}).get(t, {})}
    if not tags:
        return branches
    tag = next(t for t in ("kind", "family") if any(t in b.get("properties", {}) for b in branches))
    written = value_at(entries, here + (tag,))
    return [tags[written]] if written in tags else branches


def nodes_at(entries: list[Entry], path: tuple[str, ...]) -> list[dict[str, Any]]:
    """The schema's alternatives for the value at `path`, a union narrowed by the tag written there."""
    nodes = [_schema()["$defs"]["Spec"]]
    for i, key in enumerate(path):
        nodes = _narrow(_step(nodes, key), entries, path[:i + 1])
    return nodes


def complete(text: str, where: Context) -> list[Item]:
    entries = outline(text)
    if not where.is_value:
        return _keys(entries, where.path)
    if where.path[-1:] == ("site",):
        return _sites(entries, where.path[:-1])
    if where.path[-1:] == ("call",) or where.path[-1:] == ("in",):
        return _names(entries, where.path[-1])
    items: dict[str, Item] = {}
    for node in nodes_at(entries, where.path):
        for value in _values(node):
            items.setdefault(value, Item(value, "", node.get("description", ""), False))
    return list(items.values())


def _values(node: dict[str, Any]) -> list[str]:
    if "const" in node:
        return [str(node["const"])]
    if "enum" in node:
        return [str(v) for v in node["enum"]]
    return ["true", "false"] if node.get("type") == "boolean" else []


def _keys(entries: list[Entry], path: tuple[str, ...]) -> list[Item]:
    items: dict[str, Item] = {}
    for node in nodes_at(entries, path):
        for key, sub in node.get("properties", {}).items():
            items.setdefault(key, Item(key, _type(sub), _describe(sub), True))
    return list(items.values())


def _describe(node: dict[str, Any]) -> str:
    return node.get("description") or next((b.get("description", "") for b in _branches(node)), "")


def _type(node: dict[str, Any]) -> str:
    kinds = {b.get("type", b.get("title", "")) for b in _branches(node)}
    return " | ".join(sorted(k for k in kinds if k))


def _sites(entries: list[Entry], component: tuple[str, ...]) -> list[Item]:
    """`<backbone>.<tower>.blocks[*].<point>` for the spec's backbones, their family's towers and the points the
    component's kind declares (a kind not written yet: every point of every kind)."""
    kinds = {k: _def(k) for k in _schema()["$defs"] if k.startswith("kind_")}
    written = value_at(entries, component + ("kind",))
    points = kinds.get(f"kind_{written}", {}).get("x-points") or sorted(
        {p for k in kinds.values() for p in k.get("x-points", [])})
    items = []
    for entry in entries:
        if len(entry.path) != 2 or entry.path[0] != "backbones":
            continue
        family = value_at(entries, entry.path + ("family",))
        towers = _schema()["$defs"].get(f"family_{family}", {}).get("x-towers", ["visual"])
        for tower in towers:
            for point in points:
                at = f"{entry.path[1]}.{tower}" + ("" if point in ("input", "output", "embed") else ".blocks[*]")
                items.append(Item(f"{at}.{point}", f"{family} {tower}", "layers: *, 3, 8-12, 1,5,9, 10-last", False))
    return items


def _names(entries: list[Entry], key: str) -> list[Item]:
    """A flow step calls a component or `<backbone>.<tower>`, and reads inputs and earlier tensors."""
    sections = ("components", "backbones") if key == "call" else ("inputs", "flow")
    out = []
    for entry in entries:
        if len(entry.path) == 2 and entry.path[0] in sections:
            if entry.path[0] == "backbones":
                family = value_at(entries, entry.path + ("family",))
                towers = _schema()["$defs"].get(f"family_{family}", {}).get("x-towers", ["visual"])
                out += [Item(f"{entry.path[1]}.{t}", f"{family} tower", "", False) for t in towers]
            else:
                out.append(Item(entry.path[1], entry.path[0], "", False))
    if key == "in" and not any(e.path[:1] == ("inputs",) for e in entries):
        out += [Item(name, "input", "a standard input", False) for name in ("video", "class_names", "label")]
    return out


def hover(text: str, line: int, col: int) -> str | None:
    """Markdown for a kind or family name under the cursor, else the description of the key there."""
    word = word_at(text, line, col)
    defs = _schema()["$defs"]
    if f"kind_{word}" in defs:
        return _kind_markdown(word, defs[f"kind_{word}"])
    if f"family_{word}" in defs:
        family = defs[f"family_{word}"]
        sizes = family["properties"]["size"].get("enum", [])
        return (f"**{word}** (backbone family)\n\n{family.get('description', '')}\n\n"
                f"sizes: {', '.join(sizes)}\n\ntowers: {', '.join(family.get('x-towers', []))}")
    entries = outline(text)
    here = next((e for e in entries if e.line == line and e.path[-1] == word), None)
    if here is None:
        return None
    nodes = nodes_at(entries, here.path)
    doc = next((_describe(n) for n in nodes if _describe(n)), "")
    return f"**{word}**: {doc}" if doc else None


def _kind_markdown(name: str, kind: dict[str, Any]) -> str:
    props = kind["properties"]
    params = _branches(props["params"])[0].get("properties", {})
    rows = [f"| `{p}` | {_type(s)} | {s.get('default', '')} | {_describe(s)} |" for p, s in params.items()]
    table = "\n".join(["| param | type | default | |", "|---|---|---|---|", *rows]) if rows else "no parameters"
    uses = [b["const"] for b in _branches(props["use"])] if "use" in props else []
    attach = (f"\n\nattaches ({', '.join(uses)}) at: {', '.join(kind.get('x-points', []))}" if uses
              else "\n\ncalled in the flow")
    return f"**{name}** (component kind)\n\n{kind.get('description', '')}{attach}\n\n{table}"


def definition(text: str, file: Path, line: int, col: int) -> tuple[Path, int, int] | None:
    """Where the name under the cursor is defined: the file `extends` names (line 0), or the line that defines a
    flow tensor, component, input or backbone."""
    entries = outline(text)
    here = next((e for e in entries if e.line == line), None)
    if here is not None and here.path == ("extends",) and here.value:
        return _extended(file, str(value_at(entries, ("extends",)))), 0, 0
    word = word_at(text, line, col).strip("[],").split(".")[0]
    for entry in entries:
        if len(entry.path) == 2 and entry.path[0] in SECTIONS_WITH_NAMES and entry.path[1] == word:
            return file, entry.line, entry.col
    return None


def _extended(file: Path, name: str) -> Path:
    beside = file.parent / name
    return beside if beside.exists() or name not in shipped() else shipped()[name]
