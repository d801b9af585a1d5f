"""What a run trains with, settled once from its options and its spec: an option given (not None) wins over
the spec's value, and a stage's own epochs, lr and warm-up win over the spec's `train` section.

The run trains by this record and writes its seed and batch into run.json; the model card states the
schedules from it, and `composer sweep --dry-run` prices the batch and precision it names, so no command
settles these for itself. ("tiny means 64 px" is the spec's own rule, composer/compiler/compile.py: tiny_sets;
"--precision auto" becomes a dtype on the device, composer/compiler/precision.py.)
"""

from __future__ import annotations

from dataclasses import dataclass

from composer.rundir.run_options import RunOptions


@dataclass(frozen=True)
class Schedule:
    """How long and how fast one stage trains."""

    epochs: int
    lr: float
    warmup: float  # epochs


@dataclass(frozen=True)
class Resolved:
    seed: int
    batch: int  # the global batch of one optimiser step
    precision: str  # as asked ("auto" included): the device settles it (composer/train/accel.py)
    schedules: tuple[Schedule, ...]  # one per stage, in order (one for a spec without stages)


def stage_schedule(train, stage, epochs: int | None = None, lr: float | None = None) -> Schedule:
    """A stage's schedule: `--epochs` and `--lr` given win over the stage's own value, which wins over the
    spec's `train`. `stage` is a spec Stage, or None for a spec without stages."""
    def own(key: str):
        value = getattr(stage, key) if stage is not None else None
        return getattr(train, key) if value is None else value

    return Schedule(own("epochs") if epochs is None else epochs, own("lr") if lr is None else lr,
                    own("warmup_epochs"))


def resolve_values(spec, *, seed: int | None = None, batch_size: int | None = None, precision: str | None = None,
                   epochs: int | None = None, lr: float | None = None) -> Resolved:
    """The settings `spec` (inheritance, --set and --size applied) is run, evaluated or billed with, given the
    values a command's options name (None: not given, so the spec's; a 0 given stays 0 for the checks to refuse)."""
    train = spec.train
    stages = spec.stages.values() if spec.stages else [None]
    return Resolved(seed=train.seed if seed is None else seed,
                    batch=train.batch_size if batch_size is None else batch_size,
                    precision=train.precision if precision is None else precision,
                    schedules=tuple(stage_schedule(train, s, epochs, lr) for s in stages))


def resolve(spec, options: RunOptions) -> Resolved:
    """The settings a run of `spec` uses under `options`."""
    return resolve_values(spec, seed=options.seed, batch_size=options.batch_size, precision=options.precision,
                          epochs=options.epochs, lr=options.lr)
