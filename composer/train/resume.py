"""A run is its directory: `composer run --resume RUN_DIR` rebuilds the run's options from RUN_DIR/run.json.

An option given again must agree with the record; one that differs is refused with both values, unless
`--override NAME` names it and it is one that can change without making the run a different experiment
(OVERRIDABLE). The change is then recorded in run.json with the step it took effect at.
"""

from __future__ import annotations

import json
from dataclasses import fields
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from composer.errors import DataError

RECORD_VERSION = 1  # the layout of run.json's record; a resume refuses a record of another layout

# How long and where it runs, what it logs: changing these continues the same experiment. Everything else
# (dataset, data root, split, size, seed, spec sets, protocol, shots, batch size, lr, precision, ...) would
# make the resumed run a different one than its record says, so it cannot change.
OVERRIDABLE = ("epochs", "max_steps", "eval_every", "save_every", "progress_every", "workers", "eval_batch_size",
               "device", "log_with", "tracking_uri")

# options whose command-line spelling is not --<field>
FLAGS = {"tiny": "--size", "plan": "--no-plan", "sets": "--set", "unsets": "--unset"}


def composer_version() -> str:
    try:
        return version("composer-video")
    except PackageNotFoundError:  # a source tree that was never installed
        return "unknown"


def flag(name: str) -> str:
    return FLAGS.get(name, "--" + name.replace("_", "-"))


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
    except (OSError, ValueError) as e:
        raise DataError(f"{run_dir / 'run.json'} cannot be read ({e}); the run cannot be resumed") from None
    made_by, ours = record.get("composer", "an older version"), composer_version()
    if record.get("record_version") != RECORD_VERSION:
        raise DataError(f"{run_dir} was made by composer {made_by}, whose run record (layout "
                        f"{record.get('record_version', 'without a version')}) differs from this composer's "
                        f"({ours}, layout {RECORD_VERSION}); resume it with composer {made_by}")
    return record


def resumed_options(record: dict[str, Any], given: dict[str, Any], overrides: list[str]):
    """The recorded RunOptions, with the `given` options (field -> value, only those typed on the command
    line) checked against them. Returns (options, changes)."""
    from composer.train.run import RunOptions

    names = {f.name for f in fields(RunOptions)}
    recorded = {k: v for k, v in record["options"].items() if k in names}
    wanted = [o.lstrip("-").replace("-", "_") for o in overrides]
    for name in wanted:
        if name not in OVERRIDABLE:
            raise DataError(f"--override {name}: {'that option' if name in names else 'no such option'} cannot "
                            f"change on resume; these can: {', '.join(o.replace('_', '-') for o in OVERRIDABLE)}")
        if name not in given:
            raise DataError(f"--override {name} names an option that was not given; add {flag(name)} VALUE")
    changes = []
    for name, value in given.items():
        before = recorded.get(name, getattr(RunOptions(dataset=""), name))
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
