"""The component catalogue, generated from the registry (docs/components.md, `composer kinds`)."""

from __future__ import annotations

from typing import Any

from pydantic_core import PydanticUndefined
from rich.table import Table

from composer.components.registry import KINDS, Kind, get_kind


def _annotation(field) -> str:
    text = str(field.annotation).replace("typing.", "").replace("<class '", "").replace("'>", "")
    return text.replace("Literal", "one of ")


def _default(field) -> str:
    if field.default is PydanticUndefined:
        return "required"
    return repr(field.default)


def _params(kind: Kind) -> list[tuple[str, str, str, str]]:
    return [(name, _annotation(f), _default(f), f.description or "") for name, f in kind.params.model_fields.items()]


def _all() -> list[Kind]:
    get_kind("tap")  # makes sure every kind is registered
    return sorted(KINDS.values(), key=lambda k: (k.attaches is False, k.is_loss, k.name))


def kinds_table() -> Table:
    table = Table(show_edge=False)
    table.add_column("kind", no_wrap=True)
    for col in ("how it is used", "params", "summary"):
        table.add_column(col)
    for kind in _all():
        how = f"at a site: {', '.join(kind.uses)}" if kind.attaches else f"in the flow: ({', '.join(kind.inputs)})"
        params = ", ".join(f"{n}={d}" for n, _, d, _ in _params(kind)) or "-"
        table.add_row(kind.name, how, params, kind.summary)
    return table


def catalogue_markdown() -> str:
    from composer.backbones.registry import FAMILIES, get_family

    get_family("clip")
    lines: list[Any] = ["# Component catalogue", "",
                        "Generated from the registry by `composer kinds --markdown`; one entry per kind.", "",
                        "## Backbone families", "", "| family | sizes | towers | default weights | summary |",
                        "|---|---|---|---|---|"]
    for f in FAMILIES.values():
        lines.append(f"| `{f.name}` | {', '.join(f.sizes)}, tiny | {', '.join(f.towers)} | "
                     f"{f.default_weights(f.default_size)} | {f.summary} |")
    sections = [("Attached at a site", [k for k in _all() if k.attaches]),
                ("Called in the flow", [k for k in _all() if not k.attaches and not k.is_loss]),
                ("Losses", [k for k in _all() if k.is_loss])]
    for title, kinds in sections:
        lines += ["", f"## {title}"]
        for kind in kinds:
            lines += ["", f"### `{kind.name}`", "", kind.summary + ".", ""]
            if kind.attaches:
                lines.append(f"- uses: {', '.join(kind.uses)} (default {kind.uses[0]})")
                lines.append(f"- points: {', '.join(kind.points)}")
            else:
                lines.append(f"- inputs: {', '.join(kind.inputs)}")
            if kind.paper:
                lines.append(f"- from: {kind.paper}")
            params = _params(kind)
            if params:
                lines += ["", "| param | type | default | meaning |", "|---|---|---|---|"]
                lines += [f"| `{n}` | {t} | {d} | {m} |" for n, t, d, m in params]
    return "\n".join(lines) + "\n"
