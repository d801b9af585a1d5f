"""A run is its directory: `composer run --resume RUN_DIR` rebuilds the run's options from RUN_DIR/run.json.

An option given again must agree with the record; one that differs is refused with both values, unless
`--override NAME` names it and it is one that can change without making the run a different experiment
(OVERRIDABLE). The change is then recorded in run.json with the step it took effect at.
"""

from __future__ import annotations

import json
import math
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from composer.errors import DataError
from composer.rundir.run_options import RunOptions, flag
from composer.version import composer_version

RECORD_VERSION = 1  # the layout of run.json's record; a resume refuses a record of another layout

# How long and where it runs, what it logs: changing these continues the same experiment. Everything else
# (dataset, data root, split, size, seed, spec sets, protocol, shots, batch size, lr, precision, ...) would
# make the resumed run a different one than its record says, so it cannot change.
OVERRIDABLE = ("epochs", "max_steps", "eval_every", "save_every", "progress_every", "workers", "eval_batch_size",
               "device", "log_with", "tracking_uri")

# the least value of the recorded options that count something (the command line refuses less); a seed must
# stay a seed the generators take (the data order seeds with seed * 1000 + epoch, in 64 bits)
LEAST = {"split": 1, "shots": 1, "epochs": 1, "batch_size": 1, "eval_batch_size": 1, "workers": 0, "max_steps": 1,
         "eval_every": 1, "save_every": 1, "progress_every": 1}
SEEDS = 2 ** 53


@dataclass
class EpochPosition:
    """How far an epoch got: what a checkpoint saved mid-epoch records, and where a resumed epoch starts.
    Saved only right after an optimiser step, so no gradient accumulation is ever half done."""

    batches: int = 0  # batches consumed on each process (global batches)
    steps: int = 0  # optimiser steps taken in this epoch
    loss_sum: float = 0.0  # sum of loss * clips so far (all ranks)
    clips: int = 0
    bad: list[str] = field(default_factory=list)
    skipped: int = 0  # clips that could not be loaded so far (all ranks)


def show(name: str, value: Any) -> str:
    """A recorded value the way the command line spells it."""
    if name == "tiny":
        return "tiny" if value else "full"
    if name == "plan":
        return "off" if not value else "on"
    if name == "recompute" and isinstance(value, bool):  # recorded before --recompute auto
        return "all" if value else "none"
    if isinstance(value, list):
        return " ".join(map(str, value)) if value else "none"
    return "the spec's value" if value is None else str(value)


def read_record(run_dir: Path) -> dict[str, Any]:
    """run.json of a run directory, checked to be one this composer can resume."""
    missing = [n for n in ("run.json", "spec.yaml") if not (run_dir / n).is_file()]
    if missing:
        raise DataError(f"{run_dir} is not a run directory (no {' or '.join(missing)}); give the folder "
                        "`composer run` wrote, e.g. runs/<spec>-<time>")
    try:
        record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as e:
        raise DataError(f"{run_dir / 'run.json'} cannot be read ({str(e)[:100]}); the run cannot be resumed") from None
    if not isinstance(record, dict):
        raise DataError(f"{run_dir / 'run.json'} is not a run record (not a JSON object); the run directory is damaged")
    made_by, ours = record.get("composer", "an older version"), composer_version()
    if record.get("record_version") != RECORD_VERSION:
        raise DataError(f"{run_dir} was made by composer {made_by}, whose run record (layout "
                        f"{record.get('record_version', 'without a version')}) differs from this composer's "
                        f"({ours}, layout {RECORD_VERSION}); resume it with composer {made_by}")
    problem = record_problem(record)
    if problem:
        raise DataError(f"{run_dir / 'run.json'}: {problem}; the run directory is damaged")
    return record


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fits(value: Any, hint: Any) -> bool:
    """Whether a JSON value has the type of a RunOptions field (bool is not an int, floats are finite)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_fits(value, arg) for arg in typing.get_args(hint))
    if typing.get_origin(hint) is list:
        return isinstance(value, list) and all(_fits(v, typing.get_args(hint)[0]) for v in value)
    if hint is type(None):
        return value is None
    if hint is float:
        return type(value) in (int, float) and math.isfinite(value)
    return type(value) is hint


# the fields of run.json that composer reads back (resume, the model card), and their types
RECORD_FIELDS: dict[str, Any] = {
    "composer": str, "protocol": str, "device": str, "precision": str, "processes": int, "global_batch": int,
    "per_process_batch": int, "seed": int | None, "command": str, "spec": str | None, "weights": dict[str, str],
    "versions": dict[str, str], "changes": list, "dataset": dict}
DATASET_FIELDS: dict[str, Any] = {"name": str, "root": str, "classes": int, "train": int, "tests": dict[str, int],
                                  "missing_skipped": list[str]}


def _fits_field(value: Any, hint: Any) -> bool:
    if typing.get_origin(hint) is dict:
        return isinstance(value, dict) and all(_fits(v, typing.get_args(hint)[1]) for v in value.values())
    if hint in (dict, list):
        return isinstance(value, hint)
    return _fits(value, hint)


def record_problem(record: dict[str, Any]) -> str | None:
    """What is wrong with a run record's fields (their types, the ranges the command line enforces), or None."""
    for table, where in ((RECORD_FIELDS, record), (DATASET_FIELDS, record.get("dataset") or {})):
        for name, hint in table.items():
            if name in where and not _fits_field(where[name], hint):
                return f"its {name!r} is {_show(where[name])}, not what composer writes there"
    options = record.get("options")
    if not isinstance(options, dict):
        return "it holds no options"
    hints = typing.get_type_hints(RunOptions)
    for name, value in options.items():
        if name in hints and not _fits(value, hints[name]):
            return f"option {name!r} is {_show(value)}, which --{name.replace('_', '-')} cannot be"
        if name in LEAST and value is not None and value < LEAST[name]:
            return f"option {name!r} is {value}, less than {LEAST[name]}"
    if options.get("lr") is not None and options["lr"] <= 0:
        return f"option 'lr' is {options['lr']}, not above 0"
    for seed in (options.get("seed"), record.get("seed")):
        if seed is not None and abs(seed) >= SEEDS:
            return f"its seed {seed} is out of range (at most {SEEDS - 1} either side of 0)"
    if "dataset" not in options:
        return "its options name no dataset"
    for change in record.get("changes", []):
        if not (isinstance(change, dict) and isinstance(change.get("option"), str) and "from" in change
                and "to" in change and isinstance(change.get("from_step", {}), dict)):
            return f"its change record {_show(change)} is not one composer writes"
    return None


def recorded_options(record: dict[str, Any]) -> RunOptions:
    """The RunOptions of a run record (checked by record_problem); a field it lacks has its default."""
    names = {f.name for f in fields(RunOptions)}
    return RunOptions(**{k: v for k, v in record["options"].items() if k in names})


def resumed_options(record: dict[str, Any], given: dict[str, Any], overrides: list[str]):
    """The recorded RunOptions, with the `given` options (field -> value, only those typed on the command
    line) checked against them. Returns (options, changes)."""
    recorded = asdict(recorded_options(record))
    wanted = [o.lstrip("-").replace("-", "_") for o in overrides]
    for name in wanted:
        if name not in OVERRIDABLE:
            raise DataError(f"--override {name}: {'that option' if name in recorded else 'no such option'} cannot "
                            f"change on resume; these can: {', '.join(o.replace('_', '-') for o in OVERRIDABLE)}")
        if name not in given:
            raise DataError(f"--override {name} names an option that was not given; add {flag(name)} VALUE")
    changes = []
    for name, value in given.items():
        before = recorded[name]
        if value == before:
            continue
        if name not in wanted:
            hint = f"to change it on resume, add --override {name.replace('_', '-')}" if name in OVERRIDABLE \
                else "it cannot change on resume (start a new run instead)"
            raise DataError(f"{flag(name)} {show(name, value)} differs from the run's record ({show(name, before)}); "
                            f"{hint}")
        recorded[name] = value
        changes.append({"option": name, "from": before, "to": value})
    return RunOptions(**recorded), changes


def progress_problem(progress: dict[str, Any], stages: int) -> str | None:
    """What is wrong with the progress a checkpoint recorded for a run of `stages` stages (None: nothing):
    the stage, epoch and step reached, the best top-1 so far and where inside an epoch it stopped."""
    for key in ("stage", "epoch", "step"):
        if type(progress.get(key)) is not int or progress[key] < 0:
            return f"its progress {key!r} is {_show(progress.get(key))}, not a count"
    if progress["stage"] > stages:
        return f"its progress is at stage {progress['stage'] + 1}, but the run has {stages}"
    if not _fits(progress.get("best"), float):
        return f"its best top-1 is {_show(progress.get('best'))}, not a number"
    position = progress.get("position")
    if position is None:
        return None
    hints = typing.get_type_hints(EpochPosition)
    if not isinstance(position, dict) or not set(position) <= set(hints) or \
            not all(_fits(v, hints[k]) and (type(v) is not int or v >= 0) for k, v in position.items()):
        return f"its position inside the epoch is {_show(position)}, not one composer writes"
    return None
