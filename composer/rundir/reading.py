"""Reading a run directory back: run.json, summary.json and metrics.jsonl checked as they are read (a damaged
file is one line naming it), what a checkpoint's header stored, and the run's model rebuilt from spec.yaml on
the meta device. The model card, `card --hub` and a resumed run read a run through here."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch

from composer.errors import DataError
from composer.rundir.checkpoint import read_meta
from composer.rundir.checkpoint_dir import latest_checkpoint
from composer.rundir.recorded import check_same_weights
from composer.rundir.records import write_text
from composer.rundir.resume import read_record, record_problem


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as e:
        raise DataError(f"{path} cannot be read ({str(e)[:100]}); the run directory is damaged") from None


def _number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def summary_problem(summary: Any) -> str | None:
    """What is wrong with summary.json's fields that the card reads (None: nothing)."""
    if not isinstance(summary, dict) or not isinstance(summary.get("parts"), dict):
        return "it holds no test parts"
    for part, metrics in summary["parts"].items():
        if not isinstance(metrics, dict) or not _number(metrics.get("top1")):
            return f"test part {part!r} has no top-1"
        if any(k in metrics and not _number(metrics[k]) for k in ("top5", "mean_class", "count", "failed")):
            return f"a metric of test part {part!r} is not a number"
    views = summary.get("views", [1, 1])
    if not (isinstance(views, list) and len(views) == 2 and all(type(v) is int for v in views)):
        return "its views are not [clips, crops]"
    if "harmonic_mean" in summary and not _number(summary["harmonic_mean"]):
        return "its harmonic mean is not a number"
    if not isinstance(summary.get("bad_videos", []), list):
        return "its bad videos are not a list"
    return None


def read_run(run_dir: Path) -> dict[str, Any]:
    """run.json, summary.json (None until the run is tested) and the evaluated epochs of metrics.jsonl."""
    run_dir = Path(run_dir)
    missing = [n for n in ("run.json", "spec.yaml") if not (run_dir / n).is_file()]
    if missing:
        raise DataError(f"{run_dir} is not a run directory (no {' or '.join(missing)}); give a folder "
                        "`composer run` wrote, e.g. runs/<spec>-<time>")
    epochs = []
    if (run_dir / "metrics.jsonl").is_file():
        for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
            try:
                epochs.append(json.loads(line))
            except ValueError:
                continue  # a line cut by a crash: the epochs before it still count
    summary = run_dir / "summary.json"
    latest = latest_checkpoint(run_dir / "checkpoints")
    # a finished run resumed for more epochs (--override epochs) trains past its old results: they are not
    # the results of its weights any more (a run writes summary.json after its last checkpoint)
    stale = summary.is_file() and latest is not None and (latest / "manifest.json").is_file() and \
        (latest / "manifest.json").stat().st_mtime_ns > summary.stat().st_mtime_ns
    record = _read_json(run_dir / "run.json")
    if not isinstance(record, dict) or not isinstance(record.get("options"), dict):
        raise DataError(f"{run_dir / 'run.json'} is not a run record (no options in it); the run directory is "
                        "damaged")
    problem = record_problem(record)
    if problem:
        raise DataError(f"{run_dir / 'run.json'}: {problem}; the run directory is damaged")
    results = _read_json(summary) if summary.is_file() and not stale else None
    problem = summary_problem(results) if results is not None else None
    if problem:
        raise DataError(f"{summary}: {problem}; the run directory is damaged (delete it, and `composer run --resume "
                        f"{run_dir}` tests the run again)")
    return {"record": record, "summary": results, "stale": stale, "epochs": epochs}


def check_resume_dir(run_dir: Path, weights: dict[str, str]) -> None:
    """A run directory `composer run --resume` can continue: built on the same weights as recorded, with a
    checkpoint, and every record the run reads back readable (before any work)."""
    check_same_weights(run_dir / "run.json", read_record(run_dir).get("weights"), weights)
    if latest_checkpoint(run_dir / "checkpoints") is None:
        raise DataError(f"{run_dir} has no checkpoint yet: it stopped before its first save, so there is "
                        "nothing to resume; start the run again")
    read_run(run_dir)


def stored_meta(weights: Path) -> dict[str, Any]:
    """What a run stored in a trainable-only file's header; {} when the header cannot be read."""
    try:
        return read_meta(weights)
    except Exception:  # a truncated or foreign file: the card still shows its SHA-256
        return {}


def training_classes(run_dir: Path, record: dict[str, Any]) -> int | None:
    """How many classes the run trained on: its checkpoint says; before one exists, the dataset's count
    (base-to-novel trains on fewer, but only text classifiers run it, whose size does not depend on it)."""
    best = Path(run_dir) / "checkpoints" / "best.safetensors"
    classes = stored_meta(best).get("classes") if best.is_file() else None
    return len(classes) if classes else record.get("dataset", {}).get("classes")


def model_info(run_dir: Path, record: dict[str, Any], classes: int | None = None) -> dict[str, Any]:
    """`composer build`'s report of the run's model, rebuilt from spec.yaml on the meta device (no weights,
    no compute; the global random state is left as it was, so a card written mid-run changes nothing).
    `classes`: the training classes (default: training_classes)."""
    # lazy: the compiler (~0.4 s of imports) only when the run's model is rebuilt
    from composer.compiler.compile import BuildOptions, compile_spec
    from composer.compiler.summary import report  # lazy: as above
    from composer.spec.load import load_spec  # lazy: as above

    options = record.get("options", {})
    classes = classes if classes is not None else training_classes(run_dir, record)
    with torch.random.fork_rng(devices=[]):
        model = compile_spec(load_spec(str(Path(run_dir) / "spec.yaml")),
                             BuildOptions(device="meta", tiny=bool(options.get("tiny")), num_classes=classes))
        return report(model)


def epoch_of(line: str, order: dict[str, int]) -> tuple[int, int] | None:
    """(stage index, epoch) of a metrics.jsonl line; None for a line that is not an epoch record (cut short
    by a crash, or damaged), which is dropped with the records after the checkpoint."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not (isinstance(record, dict) and isinstance(record.get("stage"), str) and record["stage"] in order
            and type(record.get("epoch")) is int):
        return None
    return order[record["stage"]], record["epoch"]


def forget_epochs_after(path: Path, stages: list[str], progress: dict[str, Any]) -> int:
    """Drop the metrics.jsonl records of epochs the checkpoint resumed from does not contain (an epoch is
    recorded just before its state is saved, so a run stopped by a failed save recorded one epoch more): they
    are trained again, and each epoch stays in the file once. Returns how many lines were dropped."""
    if not path.exists():
        return 0
    order = {name: index for index, name in enumerate(stages)}
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    saved = (progress["stage"], progress["epoch"])  # a finished stage s is saved as (s + 1, 0)
    kept = [line for line in lines if (epoch_of(line, order) or (math.inf, 0)) <= saved]
    if len(kept) < len(lines):
        write_text(path, "".join(line + "\n" for line in kept))
    return len(lines) - len(kept)
