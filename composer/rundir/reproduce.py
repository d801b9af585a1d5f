"""The commands that recreate a run, as its model card states them: `composer run` with the run's recorded
options (every one that differs from its default), from the spec as named and from the run's own spec.yaml,
under the launcher it ran with."""

from __future__ import annotations

import shlex
from dataclasses import fields
from pathlib import Path
from typing import Any

from composer.rundir.run_options import RunOptions, flag


def _option_args(options: dict[str, Any], with_sets: bool) -> list[str]:
    """The recorded RunOptions as `composer run` arguments: every option that differs from its default,
    and --workers always (the command line's default depends on the machine)."""
    defaults = {f.name: getattr(RunOptions(dataset=""), f.name) for f in fields(RunOptions)}
    args = ["--dataset", str(options["dataset"])]
    for name, default in defaults.items():
        value = options.get(name, default)
        if name == "dataset" or (value == default and name != "workers"):
            continue
        if name in ("sets", "unsets"):
            if with_sets:
                args += [a for v in value for a in (flag(name), str(v))]
        elif name == "log_with":
            args += [a for v in value for a in ("--log-with", str(v))]
        elif name == "tiny":
            args += ["--size", "tiny" if value else "full"]
        elif name == "plan":
            args += [] if value else ["--no-plan"]
        elif name == "recompute":
            args += ["--recompute", {True: "all", False: "none"}.get(value, value)]
        elif isinstance(value, bool):
            args += [flag(name)] if value else []
        else:
            args += [flag(name), str(value)]
    return args


def _launcher(record: dict[str, Any]) -> str:
    processes = record.get("processes", 1)
    return f"torchrun --nproc-per-node {processes} -m composer.cli run" if processes > 1 else "composer run"


def reproduce_commands(record: dict[str, Any], run_dir: Path) -> list[str]:
    """Commands that recreate the run: from the spec as it was given, with its --set/--unset values (when
    run.json names it), and from the directory's spec.yaml, which already holds them."""
    options = record["options"]
    launcher = _launcher(record)
    out = []
    if record.get("spec"):
        out.append(shlex.join([*launcher.split(), record["spec"], *_option_args(options, with_sets=True)]))
    out.append(shlex.join([*launcher.split(), str(Path(run_dir) / "spec.yaml"), *_option_args(options, False)]))
    return out
