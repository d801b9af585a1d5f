"""A run's options (RunOptions, as `composer run` takes them and run.json records them) and their checks,
made before a run directory is created or any work starts.

The same checks meet every way options arrive: typed (`composer run`, `composer sweep`, `composer eval`) or
read back from a run's run.json (`--resume`, which may hold anything a hand or an older composer wrote).
A value that cannot mean what it says is refused with the option's name, never replaced by a default: a
0 or None that a later `value or default` would turn into the spec's value is exactly what is caught here.
Which values are refused, and why, is in docs/language.md ("Limits").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from composer.data.check import DEFAULT_SHORT
from composer.errors import DataError
from composer.spec.limits import MAX_INT, MAX_WORKERS


@dataclass
class RunOptions:
    dataset: str
    data_root: str | None = None
    split: int = 1
    protocol: str = "supervised"
    shots: int | None = None
    eval_dataset: str | None = None
    eval_root: str | None = None
    tiny: bool = False
    weights: str | None = None  # None: the default (random at tiny size, the spec's at full size); "demo"; "random"
    epochs: int | None = None
    batch_size: int | None = None  # the global batch of one optimiser step, split evenly across processes
    eval_batch_size: int | None = None  # clips (views included) per evaluation forward on each process
    lr: float | None = None
    workers: int = 2
    device: str | None = None
    precision: str | None = None
    seed: int | None = None
    out: str = "runs"
    skip_missing: bool = False
    short_videos: str = DEFAULT_SHORT  # videos shorter than the spec's frames: loop or skip (data/check.py)
    max_steps: int | None = None
    eval_every: int = 1
    save_every: int | None = None  # also save the resume state every N optimiser steps (epoch ends always)
    progress_every: int | None = None  # a plain progress line every N steps off a terminal (default: 10%)
    gpu_decode: bool = False  # decode with NVDEC on the run's GPU (in the main process)
    plan: bool = True
    recompute: str = "auto"  # auto (only what does not fit the device's memory), all or none
    cache_features: str | None = None  # folder for frozen features of un-augmented training clips
    compile: bool = False  # torch.compile the model (falls back to eager with a message)
    fsdp: bool = False  # shard a full fine-tune across GPUs (Accelerate's FSDP plugin)
    log_with: list[str] = field(default_factory=list)  # trackers (--log-with); empty: TensorBoard when installed
    tracking_uri: str | None = None  # MLflow's store (default: SQLite in the run directory)
    sets: list[str] = field(default_factory=list)
    unsets: list[str] = field(default_factory=list)


# options whose command-line spelling is not --<field>
FLAGS = {"tiny": "--size", "plan": "--no-plan", "sets": "--set", "unsets": "--unset"}


def flag(name: str) -> str:
    """A RunOptions field as the command line spells it."""
    return FLAGS.get(name, "--" + name.replace("_", "-"))


# options that count something: (field, smallest value); None means "the spec's value" and is always accepted
COUNTS = (("epochs", 1), ("batch_size", 1), ("eval_batch_size", 1), ("max_steps", 1), ("eval_every", 1),
          ("save_every", 1), ("progress_every", 1), ("shots", 1))


def _refuse(name: str, value: Any, why: str) -> DataError:
    return DataError(f"{flag(name)} {value}: {why}")


def _integer(name: str, value: Any, least: int, most: int = MAX_INT) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _refuse(name, value, "give a whole number")
    if not least <= value <= most:
        raise _refuse(name, value, f"give a whole number from {least} to {most}")


def check_run_options(options: RunOptions) -> None:
    """Refuse (DataError, naming the option) any RunOptions value a run cannot honour as given."""
    for name, least in COUNTS:
        value = getattr(options, name)
        if value is not None:
            _integer(name, value, least)
    _integer("workers", options.workers, 0, MAX_WORKERS)
    if options.seed is not None:
        _integer("seed", options.seed, -MAX_INT, MAX_INT)
    if options.lr is not None:
        if isinstance(options.lr, bool) or not isinstance(options.lr, (int, float)):
            raise _refuse("lr", options.lr, "give a number")
        if not math.isfinite(options.lr) or options.lr <= 0:
            raise _refuse("lr", options.lr, "the learning rate must be a finite number above 0")
    if options.shots is not None and options.protocol != "few-shot":
        raise _refuse("shots", options.shots, f"--shots is for --protocol few-shot, not {options.protocol}")
    if options.eval_dataset is not None and options.protocol != "zero-shot":
        raise _refuse("eval_dataset", options.eval_dataset,
                      f"--eval-dataset is for --protocol zero-shot, not {options.protocol}")
    for name in ("out", "data_root", "eval_root", "cache_features", "tracking_uri", "device"):
        if getattr(options, name) == "":
            raise _refuse(name, "''", "an empty value; leave the option out for its default")


def warmup_warnings(stages: list[tuple[str, int, float]]) -> list[str]:
    """A line for each stage (name, epochs, warm-up epochs) whose warm-up is longer than the stage: its
    learning rate never reaches the peak (the run goes on; the line is printed and kept in run.json)."""
    return [f"stage {name}: the warm-up ({warmup:g} epochs) is longer than the stage ({epochs} epoch"
            f"{'s' if epochs != 1 else ''}), so the learning rate never reaches its peak; it ends at "
            f"{epochs / warmup:.0%} of it" for name, epochs, warmup in stages if warmup > epochs]
