"""`composer eval`: a checkpoint tested with the paper's protocol, and a record of exactly what was tested.

The checkpoint decides what it can: its seed and size (tiny backbones are regenerated from them, so the
numbers never depend on an option the user must remember; a contradicting --seed/--size is refused).
Everything goes into an eval directory, printed at the end:

<out>/<spec>-<time>/       out: --out, else the checkpoint's run directory's evals/, else evals/
    summary.json           spec (name, path), checkpoint (path, SHA-256), dataset (name, root, split),
                           protocol, views, seed, size, the data check, metrics per test part (bad test
                           videos scored as wrong: "failed"), per-class accuracy, and every video's
                           prediction (path, label, predicted, top-5 with probabilities, or its error)
    per_class.json, confusion.json   as in a run directory
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.table import Table

from composer.data.check import DEFAULT_SHORT
from composer.data.protocols import Part
from composer.files import file_sha256
from composer.rundir.recorded import checkpoint_meta, load_checkpoint, settle, settle_weights
from composer.rundir.records import write_json
from composer.rundir.run_options import RunOptions
from composer.train.run import Run

TOP_K = 5


@dataclass
class EvalOptions:
    dataset: str
    data_root: str | None = None
    split: int = 1
    skip_missing: bool = False
    short_videos: str = DEFAULT_SHORT
    protocol: str = "supervised"
    shots: int | None = None
    eval_dataset: str | None = None
    eval_root: str | None = None
    size: str | None = None  # default: the checkpoint's, else full
    seed: int | None = None  # default: the checkpoint's, else the spec's
    weights: str | None = None  # "demo" or "random"; default: the checkpoint's
    views: tuple[int, int] | None = None  # (clips, crops); default: the spec's train.views
    batch_size: int | None = None
    workers: int = 2
    device: str | None = None
    precision: str | None = None
    gpu_decode: bool = False
    out: str | None = None  # default: the checkpoint's run directory's evals/, else evals/
    sets: list[str] = field(default_factory=list)
    unsets: list[str] = field(default_factory=list)


def default_out(checkpoint: str) -> Path:
    """evals/ inside the run directory the checkpoint belongs to (the nearest folder above it with a
    run.json), else evals/ in the current folder."""
    for folder in list(Path(checkpoint).resolve().parents)[:3]:
        if (folder / "run.json").is_file():
            return folder / "evals"
    return Path("evals")


def _predictions(part: Part, scores: torch.Tensor, indices: list[int], bad: list[str]) -> list[dict[str, Any]]:
    """One entry per test video, in the part's order: its top classes, or why it has none (scored as wrong)."""
    rows = dict(zip(indices, scores))
    errors = {message.split(": ", 1)[0]: message.split(": ", 1)[-1] for message in bad}
    out = []
    for i, item in enumerate(part.items):
        entry: dict[str, Any] = {"path": str(item.path), "label": part.classes[item.label]}
        if i in rows:
            top = rows[i].topk(min(TOP_K, len(part.classes)))
            entry["predicted"] = part.classes[int(top.indices[0])]
            entry["top5"] = [{"class": part.classes[int(c)], "probability": float(p)}
                             for p, c in zip(top.values, top.indices)]
        else:
            entry["predicted"] = None
            entry["error"] = errors.get(str(item.path), "not scored")
        out.append(entry)
    return out


def evaluate_checkpoint(spec_path: str, checkpoint: str, options: EvalOptions) -> tuple[dict[str, Any], Path]:
    """Test a checkpoint; returns the summary and the eval directory it was written to."""
    meta = checkpoint_meta(checkpoint)
    size = settle(checkpoint, "size", options.size, meta.get("size")) or "full"
    seed = settle(checkpoint, "seed", options.seed, meta.get("seed"))
    kind = settle_weights(checkpoint, options.weights, meta, size == "tiny")
    sets = list(options.sets)
    if options.views is not None:
        sets.append(f"train.views={{clips: {options.views[0]}, crops: {options.views[1]}}}")
    out = options.out if options.out is not None else str(default_out(checkpoint))
    run = Run(spec_path, RunOptions(
        dataset=options.dataset, data_root=options.data_root, split=options.split, protocol=options.protocol,
        shots=options.shots, eval_dataset=options.eval_dataset, eval_root=options.eval_root, tiny=size == "tiny",
        weights=kind, batch_size=options.batch_size, eval_batch_size=options.batch_size, workers=options.workers,
        device=options.device, precision=options.precision, seed=seed, out=out, skip_missing=options.skip_missing,
        short_videos=options.short_videos, gpu_decode=options.gpu_decode, log_with=["none"], sets=sets,
        unsets=list(options.unsets),
        recompute="none"))  # nothing runs backward: pricing what to recompute would be start-up work for nothing
    weights = load_checkpoint(run.model, checkpoint, spec_path)
    tested = run.evaluator  # the same Evaluator a run tests with at its end
    results = tested.test(run.dir if run.main else None)
    per_class = json.loads((run.dir / "per_class.json").read_text()) if run.main else {}
    summary = {
        "spec": {"name": run.spec.name, "path": str(spec_path)},
        "checkpoint": {"path": str(weights), "sha256": file_sha256(weights)},
        "dataset": {"name": run.index.name, "root": str(run.index.root), "split": options.split},
        "protocol": results["protocol"], "views": results["views"], "seed": run.seed, "size": size,
        **run.weights,
        "data": run.data_report.to_json(), "parts": results["parts"], "per_class": per_class,
        "bad_videos": results["bad_videos"],
        "predictions": {name: _predictions(part, tested.scores[name][0], tested.indices[name], results["bad_videos"])
                        for name, part in run.task.tests.items()},
    }
    if "harmonic_mean" in results:
        summary["harmonic_mean"] = results["harmonic_mean"]
    if run.main:
        write_json(run.dir / "summary.json", summary)
    run.finish()
    return summary, run.dir


def metrics_table(summary: dict[str, Any]) -> Table:
    """The metrics of each test part; "failed": test videos that could not be decoded, scored as wrong."""
    table = Table(title=f"{summary['protocol']}, {summary['views'][0]} clip(s) x {summary['views'][1]} crop(s)",
                  title_justify="left")
    for col in ("test", "clips", "failed", "top-1", "top-5", "mean class"):
        table.add_column(col, justify="left" if col == "test" else "right")
    for name, m in summary["parts"].items():
        table.add_row(name, str(m["count"]), str(m.get("failed", 0)), f"{m['top1']:.2f}",
                      f"{m['top5']:.2f}" if "top5" in m else "-",
                      f"{m['mean_class']:.2f}" if "mean_class" in m else "-")
    if "harmonic_mean" in summary:
        table.add_row("harmonic mean", "", "", f"{summary['harmonic_mean']:.2f}", "", "")
    return table
