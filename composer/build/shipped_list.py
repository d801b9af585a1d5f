"""`composer specs`: one line per shipped spec, with what it reproduces, its backbones and trainable size.

The trainable count comes from building the spec on the meta device at full size, exactly as `composer
build` does, so the list can never disagree with the build (all shipped specs take a few seconds).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from composer.build.compile import BuildOptions, compile_spec
from composer.build.summary import parameter_counts
from composer.spec.load import load_spec
from composer.spec.shipped import ROOT, SUFFIXES, shipped


def spec_row(name: str, path: Path) -> dict[str, Any]:
    """What `composer specs` says about one shipped spec."""
    spec = load_spec(path)
    model = compile_spec(spec, BuildOptions(device="meta"))
    other = [s for s in SUFFIXES if s != path.suffix and path.with_suffix(s).is_file()]
    return {
        "name": name,
        "file": str(path.relative_to(ROOT.resolve())),
        "also": [str(path.with_suffix(s).relative_to(ROOT.resolve())) for s in other],
        "paper": spec.paper or (spec.reported.source if spec.reported else None) or spec.description,
        "backbones": [b.label for b in model.backbones.values()],
        "trainable_params": sum(p["trainable"] for p in parameter_counts(model).values()),
    }


def spec_rows() -> list[dict[str, Any]]:
    return [spec_row(name, path) for name, path in shipped().items()]


def _millions(n: int) -> str:
    return f"{n / 1e6:,.2f}M" if n >= 10_000 else f"{n:,}"


def specs_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(show_edge=False, caption="names work wherever a spec path does (composer build NAME); where a "
                  "name has both syntaxes, NAME is the YAML file", caption_justify="left")
    for column in ("name", "paper / description", "backbones", "trainable", "file"):
        table.add_column(column, no_wrap=True, overflow="ellipsis", justify="right" if column == "trainable" else "left")
    for r in rows:
        also = "".join(f" (+{Path(a).suffix})" for a in r["also"])
        table.add_row(r["name"], r["paper"] or "-", ", ".join(r["backbones"]), _millions(r["trainable_params"]),
                      r["file"] + also)
    return table
