"""`composer report`: parameter and FLOP counts of specs at full size, against what their papers report.

The table is written between two markers in a Markdown file (docs/reproduction.md), so the prose around
it (how the counts were derived, why a figure cannot be matched) stays hand-written and the numbers are
always regenerated from the specs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from composer.compiler.compile import compile_spec
from composer.compiler.flops import count_flops
from composer.compiler.summary import parameter_counts
from composer.spec.load import load_spec

START, END = "<!-- report:start -->", "<!-- report:end -->"


def measure(path: str | Path) -> dict[str, Any]:
    """Full-size counts of one spec, built on the meta device."""
    spec = load_spec(path)
    model = compile_spec(spec)
    parts = parameter_counts(model)
    flops = count_flops(model)
    video = next((i for i in spec.inputs.values() if i.kind == "video"), None)
    reported = spec.reported
    return {
        "spec": str(path), "name": spec.name,
        "backbones": ", ".join(b.label for b in model.backbones.values()),
        "frames": video.frames if video else None,
        "trainable": sum(p["trainable"] for p in parts.values()),
        "total": sum(p["total"] for p in parts.values()),
        "gflops": flops.per_clip / 1e9, "gmacs": flops.per_clip / 2e9,
        "paper_trainable": reported.trainable_params if reported else None,
        "paper_gflops": reported.gflops if reported else None,
        "source": reported.source if reported else None,
    }


def _millions(n: float | None) -> str:
    return "" if n is None else f"{n / 1e6:,.2f}M"


def _versus(ours: float, theirs: float | None, fmt) -> str:
    if theirs is None:
        return "n/a"
    return f"{fmt(theirs)} ({100 * (ours - theirs) / theirs:+.1f}%)"


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| spec | backbone | frames | trainable | total | GFLOPs / clip | GMACs / clip | paper: trainable (ours vs paper) | paper: GFLOPs (ours vs paper) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| [{r['name']}](../{r['spec']}) | {r['backbones']} | {r['frames']} | {_millions(r['trainable'])} "
            f"| {_millions(r['total'])} | {r['gflops']:.2f} | {r['gmacs']:.2f} "
            f"| {_versus(r['trainable'], r['paper_trainable'], _millions)} "
            f"| {_versus(r['gflops'], r['paper_gflops'], lambda v: f'{v:.2f}')} |")
    return "\n".join(lines) + "\n"


def write(rows: list[dict[str, Any]], path: str | Path) -> str:
    """Replace the table between the markers of `path` (creating the file if needed); return the table."""
    path = Path(path)
    body = table(rows)
    text = path.read_text(encoding="utf-8") if path.exists() else f"# Reproduction report\n\n{START}\n{END}\n"
    if START not in text or END not in text:
        text = text.rstrip() + f"\n\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{START}\n{body}{END}{tail}", encoding="utf-8")
    return body
