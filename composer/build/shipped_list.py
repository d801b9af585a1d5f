"""`composer specs`: one line per shipped spec, with what it reproduces, its backbones and trainable size.

The trainable count comes from building the spec on the meta device at full size, exactly as `composer
build` does, so the list can never disagree with the build (all shipped specs take a few seconds).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def specs_text(rows: list[dict[str, Any]]) -> str:
    """Plain aligned lines, one per spec (easy to grep), and a note on what a name means."""
    cells = [("name", "trainable", "backbones", "file", "paper / description")]
    for r in rows:
        also = "".join(f" (+{Path(a).suffix})" for a in r["also"])
        cells.append((r["name"], _millions(r["trainable_params"]), ", ".join(r["backbones"]), r["file"] + also,
                      r["paper"] or "-"))
    widths = [max(len(row[i]) for row in cells) for i in range(4)]
    lines = ["  ".join([row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].ljust(widths[2]),
                        row[3].ljust(widths[3]), row[4]]) for row in cells]
    note = ("A name works wherever a spec path does (composer build NAME); a file that exists wins. Where a name "
            "has both syntaxes (+.comp), the name means the YAML file.")
    return "\n".join(lines + ["", note]) + "\n"
