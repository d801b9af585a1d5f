"""The component catalogue, generated from the registry (docs/components.md, `composer kinds`)."""

from __future__ import annotations

from typing import Any

from pydantic_core import PydanticUndefined
from rich.console import Group
from rich.table import Table

from composer.backbones.registry import FAMILIES, own_families
from composer.backbones.registry import PLUGINS as FAMILY_PLUGINS
from composer.components.registry import PLUGINS, Kind, own_kinds


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
    return sorted(own_kinds().values(), key=lambda k: (k.attaches is False, k.is_loss, k.name))


OWN = "composer-video"  # the package composer's own kinds and families come from


def kinds_table() -> Group:
    """Every kind, then every family, each with the package it comes from. A plugin's module is not imported
    for this: until a spec (or `composer check-kind`) loads it, its row shows its package's own summary."""
    table = Table(show_edge=False)
    table.add_column("kind", no_wrap=True)
    for col in ("package", "how it is used", "params", "summary"):
        table.add_column(col)
    for kind in _all():
        how = f"at a site: {', '.join(kind.uses)}" if kind.attaches else f"in the flow: ({', '.join(kind.inputs)})"
        params = ", ".join(f"{n}={d}" for n, _, d, _ in _params(kind)) or "-"
        table.add_row(kind.name, PLUGINS.package_of(kind.name) or OWN, how, params, kind.summary)
    for name, entry in sorted(PLUGINS.entries().items()):
        if name not in PLUGINS.loaded:
            table.add_row(name, entry.package, "not imported yet", f"composer check-kind {name}", entry.summary)
    own_families()  # registers every own family (a plugin's is listed if a spec loaded it)
    families = Table(show_edge=False)
    for col in ("family", "package", "sizes", "towers", "summary"):
        families.add_column(col, no_wrap=col == "family")
    for f in sorted(FAMILIES.values(), key=lambda f: f.name):
        families.add_row(f.name, FAMILY_PLUGINS.package_of(f.name) or OWN, ", ".join(f.sizes) + ", tiny",
                         ", ".join(f.towers), f.summary)
    for name, entry in sorted(FAMILY_PLUGINS.entries().items()):
        if name not in FAMILY_PLUGINS.loaded:
            families.add_row(name, entry.package, "not imported yet", "", entry.summary)
    return Group(table, "", families)


def catalogue_markdown() -> str:
    """docs/components.md: composer's own families and kinds (never a plugin's, even one already loaded), and how
    another package adds its own."""
    lines: list[Any] = ["# Component catalogue", "",
                        "Generated from the registry by `composer kinds --markdown`; one entry per kind.", "",
                        "## Backbone families", "", "| family | sizes | towers | default weights | summary |",
                        "|---|---|---|---|---|"]
    for f in own_families().values():
        lines.append(f"| `{f.name}` | {', '.join(f.sizes)}, tiny | {', '.join(f.towers)} | "
                     f"{f.default_weights(f.default_size)} | {f.summary} |")
    own = [k for k in _all() if PLUGINS.package_of(k.name) is None]
    sections = [("Attached at a site", [k for k in own if k.attaches]),
                ("Called in the flow", [k for k in own if not k.attaches and not k.is_loss]),
                ("Losses", [k for k in own if k.is_loss])]
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
    return "\n".join(lines) + "\n" + WRITING_A_PLUGIN


WRITING_A_PLUGIN = """
## Kinds from other packages

A package adds kinds and backbone families without changing composer: it names each one as an entry point
of its pyproject.toml, and composer finds it once the package is installed (composer/plugins.py).
`examples/plugin/` is a whole one: an SSF adapter, its package metadata and its test.

```toml
[project.entry-points."composer.kinds"]
ssf = "composer_ssf:KIND"            # the kind's name = module:attribute of its `Kind`
[project.entry-points."composer.families"]
my_vit = "my_package.family:FAMILY"  # a `Family` (composer/backbones/registry.py)
```

- The `Kind` is written as composer's own are (composer/components/registry.py: a `Params` model, its uses,
  points and builder); its module does not call `register`. Composer's own declare `trains` (whether the
  built module has parameters) and `check` (what the builder refuses) and name their builder lazily
  (`composer.lazy.Lazy`), so `composer validate` checks a spec without importing torch; a kind that leaves
  `trains` out is checked by building the spec on the meta device. A `Family` declares `shapes` likewise
  (composer/backbones/shape.py); without them its towers are read from a meta-device build.
- `composer kinds` lists a plugin with its package without importing it; a spec that names the kind imports
  its module; `composer schema` imports every plugin, so the schema it writes knows their params (the schema
  shipped for editors, and the language server's completion, know composer's own kinds only; its
  diagnostics come from the compiler and know plugins).
- A plugin whose module raises on import, or that offers a name composer or a second package already has, is
  refused in one line naming its package; composer's own kinds keep working and keep their names.
- `composer check-kind NAME`, or `composer.testing.assert_kind_contract(NAME)` in the package's tests, runs
  the contract composer's own kinds pass (tests/test_contract.py): at every family, tower, point and use the
  kind declares, it is refused at its line, or it builds, a gradient reaches its parameters and one step on
  them changes the output.
"""
