"""The checks of a run's options, made before a run directory is created or any work starts.

The same checks meet every way options arrive: typed (`composer run`, `composer sweep`, `composer eval`) or
read back from a run's run.json (`--resume`, which may hold anything a hand or an older composer wrote).
A value that cannot mean what it says is refused with the option's name, never replaced by a default: a
0 or None that a later `value or default` would turn into the spec's value is exactly what is caught here.
Which values are refused, and why, is in docs/language.md ("Limits").
"""

from __future__ import annotations

import math
from typing import Any

from composer.errors import DataError
from composer.spec.limits import MAX_INT, MAX_WORKERS
from composer.train.resume import flag

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


def check_run_options(options) -> None:
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
