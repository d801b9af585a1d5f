"""What a run trains with, settled once from its options and its spec: an option given (not None) wins over
the spec's value, and a stage's own epochs, lr and warm-up win over the spec's `train` section.

The run trains by this record and writes its seed and batch into run.json; the model card states the
schedules from it, and `composer sweep --dry-run` prices the batch and precision it names, so no command
settles these for itself. ("tiny means 64 px" is the spec's own rule, composer/build/compile.py: tiny_sets;
"--precision auto" becomes a dtype on the device, composer/build/precision.py.)
"""

from __future__ import annotations

from dataclasses import dataclass

from composer.train.run_options import RunOptions


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


def resolve(spec, options: RunOptions) -> Resolved:
    """The settings a run of `spec` (inheritance, --set and --size applied) uses under `options`."""
    train = spec.train
    stages = spec.stages.values() if spec.stages else [None]
    return Resolved(seed=train.seed if options.seed is None else options.seed,
                    batch=train.batch_size if options.batch_size is None else options.batch_size,
                    precision=options.precision or train.precision,
                    schedules=tuple(stage_schedule(train, s, options.epochs, options.lr) for s in stages))
