"""A run's stages and what each one's training step is planned to recompute.

A spec without `stages` trains once, as one stage named "train". Each stage trains its own parts through its
own losses, so each gets its own plan of frozen blocks to recompute: a later stage may train lower in a tower.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from composer.compiler.budget import choose_recompute
from composer.compiler.compile import BuildOptions, compile_spec
from composer.compiler.memory import MemoryModel, bill_lines
from composer.compiler.memory_sizes import default_budget, format_bytes
from composer.errors import DataError
from composer.graph.plan import Recompute
from composer.rundir.run_options import RunOptions


@dataclass(frozen=True)
class StagePlan:
    """What one stage trains, and how long and fast."""

    name: str
    index: int
    parts: set[str]
    losses: dict[str, float] | None
    epochs: int
    lr: float
    warmup: float


def stages_of(spec) -> list[tuple[str, Any]]:
    """(name, Stage) of each stage in order; ("train", None) for a spec without stages."""
    return list(spec.stages.items()) if spec.stages else [("train", None)]


def recompute_for(spec, options: RunOptions, batch_size: int, precision: str, classes: int,
                  stage: tuple[str, Any] | None = None) -> bool | Recompute:
    """The plan's recomputation: --recompute all/none as given; auto chooses, on the meta device, the
    fewest frozen blocks to recompute so that a step of the per-process batch fits the device's budget
    (all of them when no budget is known). `stage` (name, Stage): plan that stage's step (what it trains, its losses);
    every stage needs its own plan, since a later one may train lower in a tower or through other losses.
    Records from before `auto` hold True/False."""
    setting = {True: "all", False: "none"}.get(options.recompute, options.recompute)
    if setting != "auto" or not options.plan:
        return setting != "none"
    known = default_budget()
    if known is None:
        return True
    meta = compile_spec(spec, BuildOptions(device="meta", tiny=options.tiny, num_classes=classes,
                                           weights=options.weights))
    precision = precision if precision in ("bf16", "fp16") else "fp32"
    losses = dict(stage[1].losses) if stage and stage[1] else None
    if stage and stage[1]:
        meta.set_trainable(set(stage[1].trains))
    choice = choose_recompute(meta, precision, batch_size, *known, losses=losses)
    if not choice.fits:
        bill = "\n".join(f"  {line}" for line in
                         bill_lines(MemoryModel(meta, precision, losses).bill(batch_size).as_json()))
        step = f"a training step of stage {stage[0]}" if stage and stage[1] else "a training step"
        raise DataError(f"{step} ({batch_size} clips per process) needs {format_bytes(choice.peak)} even "
                        f"recomputing every frozen block it can, but {known[1]} leaves {format_bytes(known[0])}; give "
                        f"a smaller --batch-size (composer build SPEC --batch-size N shows the largest that fits). "
                        f"The bill:\n{bill}")
    return choice.recompute
