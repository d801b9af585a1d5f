"""The JSON Schema (draft 2020-12) of a YAML spec, generated from the IR and the registries.

The IR keeps a component's params as a plain mapping (composer/spec/ir.py), so the schema is not the IR's
own: here each registered kind becomes a model of its own (`kind` fixed to its name, `params` its params
model, `use` and the site's point limited to what it declares), and the components are a union
discriminated on `kind`; backbones likewise on `family`, with that family's sizes, towers and activations.
Descriptions come from the IR's docstrings, the kinds' summaries and the params' field descriptions.

A spec that `extends` another says only what changes: it is checked against a partial copy of the same
schema (nothing required, any value may be `!delete`, read as null). The schema checks structure only;
what needs the backbones built (layers, shapes, the graph) stays with `composer validate`.

The file composer/editor/spec.schema.json ships in the wheel for editors; `composer schema` regenerates it
and tests/test_schema.py checks the two agree. `composer schema` also takes in the kinds and families of
installed plugins (composer/plugins.py), so a plugin's user writes a schema that knows its params; the
shipped file knows composer's own.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import Field, create_model

from composer.spec.ir import BackboneSpec, Component, Name, Node, Spec

if TYPE_CHECKING:  # the registries import torch: only `generate` needs them, never the shipped file's readers
    from composer.backbones.registry import Family
    from composer.components.registry import Kind

SCHEMA_ID = "https://composer.invalid/spec.schema.json"  # an identifier, never fetched
SHIPPED = resources.files("composer") / "editor" / "spec.schema.json"
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"


def site_pattern(points: tuple[str, ...]) -> str:
    """A site string whose point is one of `points` (grammar/site.lark; spaces between tokens allowed).
    Which layers exist inside blocks[...] is left to the compiler, which knows the tower's depth."""
    dot = r" *\. *"
    point = "|".join(dot.join(re.escape(part) for part in p.split(".")) for p in sorted(points, key=len, reverse=True))
    return (rf"^ *{_NAME}{dot}{_NAME}({dot}blocks *\[[0-9*, last-]*\])?({dot}({point}))? *$")


def _component_model(kind: Kind) -> type[Node]:
    about = kind.summary + (f"; from {kind.paper}" if kind.paper else "")
    fields: dict[str, Any] = {
        "kind": (Literal[kind.name], Field(description=about)),
        "params": (kind.params, Field(default_factory=dict, description=f"the parameters of {kind.name}")),
        "frozen": (bool, Field(False, description="keep its parameters frozen")),
    }
    if kind.attaches:  # a flow node has no site: it is called in the flow
        site = Annotated[str, Field(pattern=site_pattern(kind.points))]
        fields["site"] = (site | list[site] | None, Field(
            None, description="where it attaches: <backbone>.<tower>.blocks[<layers>].<point>; points: "
                              + ", ".join(kind.points)))
        fields["use"] = (Literal[kind.uses] | None, Field(None, description="how it uses its site"))
    return create_model(f"kind_{kind.name}", __base__=Node, __doc__=about, **fields)


def _backbone_model(family: Family) -> type[Node]:
    from composer.backbones.registry import TINY  # lazy: only generate() needs the registries

    activation = Literal[family.activations] | None if family.activations else None
    fields: dict[str, Any] = {
        "family": (Literal[family.name], Field(description=family.summary)),
        "size": (Literal[family.sizes + (TINY,)], Field(description="towers: " + ", ".join(family.towers))),
    }
    if activation is not None:
        fields["activation"] = (activation, None)
    return create_model(f"family_{family.name}", __base__=BackboneSpec, __doc__=family.summary, **fields)


def _one_of(models: list[type[Node]], key: str) -> Any:
    return Annotated[Union[tuple(models)], Field(discriminator=key)]


def spec_model() -> type[Spec]:
    """The IR's Spec with components and backbones as unions discriminated on `kind` and `family`."""
    from composer.backbones.registry import all_families  # lazy: only generate() needs the registries
    from composer.components.registry import all_kinds  # lazy: only generate() needs the registries

    registered, offered = all_kinds(), all_families()  # other packages' too: a spec may name them
    kinds = _one_of([_component_model(registered[k]) for k in sorted(registered)], "kind")
    families = _one_of([_backbone_model(offered[f]) for f in sorted(offered)], "family")
    return create_model(
        "Spec", __base__=Spec, __doc__=Spec.__doc__,
        backbones=(dict[Name, families], Field(default_factory=dict, description=_doc(BackboneSpec))),
        components=(dict[Name, kinds], Field(default_factory=dict, description=_doc(Component))))


def _doc(model: type) -> str:
    return " ".join((model.__doc__ or "").split())


def generate() -> dict[str, Any]:
    """The whole schema: a complete spec, or (with `extends`) the partial one."""
    from composer.backbones.registry import all_families  # lazy: only generate() needs the registries
    from composer.components.registry import all_kinds  # lazy: only generate() needs the registries

    full = spec_model().model_json_schema(by_alias=True)
    defs = full.pop("$defs")
    for name, family in all_families().items():  # annotations for the language server's site completion
        defs[f"family_{name}"]["x-towers"] = list(family.towers)
    for name, kind in all_kinds().items():
        defs[f"kind_{name}"]["x-points"] = list(kind.points)
    defs["Spec"] = full
    partial = {f"partial_{name}": _partial(body) for name, body in defs.items()}
    partial["partial_Spec"]["properties"]["extends"] = {
        "type": "string", "description": "the spec this one changes: a path relative to this file, or a shipped name"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "composer spec",
        "description": "A composer spec in YAML (docs/language.md). Generated by `composer schema`.",
        "if": {"type": "object", "required": ["extends"]},
        "then": {"$ref": "#/$defs/partial_Spec"},
        "else": {"$ref": "#/$defs/Spec"},
        "$defs": {**defs, **partial},
    }


def _partial(schema: Any) -> Any:
    """A copy of `schema` where nothing is required, any value may be null (a `!delete`), a component may leave
    out its `kind` (so the union is any of its members, no longer exactly one), and references point at the
    partial copies."""
    if isinstance(schema, list):
        return [_partial(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _partial(v) for k, v in schema.items() if k not in ("required", "discriminator", "default")}
    if "$ref" in out:
        out["$ref"] = out["$ref"].replace("#/$defs/", "#/$defs/partial_")
    if "oneOf" in out:
        out["anyOf"] = out.pop("oneOf")
    for key in ("properties", "patternProperties"):
        if key in out:
            out[key] = {k: {"anyOf": [v, {"type": "null"}]} for k, v in out[key].items()}
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = {"anyOf": [out["additionalProperties"], {"type": "null"}]}
    return out


def dumps(schema: dict[str, Any]) -> str:
    """The schema as the shipped file writes it (stable: keys sorted, one trailing newline)."""
    return json.dumps(schema, indent=1, sort_keys=True) + "\n"


def shipped() -> dict[str, Any]:
    """The schema shipped in the wheel (no registry is imported to read it)."""
    return json.loads(SHIPPED.read_text(encoding="utf-8"))

