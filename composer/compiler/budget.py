"""The recomputation a budget needs: the fastest plan whose training step fits, block by block.

Recomputing a frozen block saves the activations it would keep for backward and costs one more forward
pass through it, so a plan should recompute only what does not fit. The memory model
(composer/compiler/memory.py) prices any choice on the meta device, so the choice is made by measuring:
nothing recomputed if that fits; else units (a frozen block of a tower run, or a component that
recomputes itself) are added in the order of what each saves on its own, largest first, until the bill
fits (savings nearly add up, so as many as should suffice are taken at once, then confirmed); then every
unit whose removal still fits is dropped again, so the choice is minimal (taking out any one recomputed
unit would exceed the budget). Frozen blocks of one tower cost the same to recompute,
so saving per unit of time is saving per block.
"""

from __future__ import annotations

from dataclasses import dataclass

from composer.compiler.memory import MemoryModel
from composer.compiler.memory_sizes import format_bytes
from composer.graph.plan import ALL, Recompute
from composer.spec.site import spans

Unit = tuple[str, str, int]  # ("block", run id, block index) or ("component", name, 0)


@dataclass
class Choice:
    recompute: Recompute
    fits: bool
    peak: int  # the predicted peak of a step under the choice
    stored_peak: int  # the peak with nothing recomputed


def _as_recompute(units: set[Unit], reason: tuple[str, ...] = ()) -> Recompute:
    blocks: dict[str, set[int]] = {}
    for kind, name, index in units:
        if kind == "block":
            blocks.setdefault(name, set()).add(index)
    return Recompute({r: frozenset(b) for r, b in blocks.items()},
                     frozenset(name for kind, name, _ in units if kind == "component"), reason)


def _describe(model, units: set[Unit], stored: int, peak: int, budget: int, source: str,
              batch_size: int) -> tuple[str, ...]:
    why = (f"storing them, the step needs {format_bytes(stored)} at batch {batch_size}, the budget leaves "
           f"{format_bytes(budget)} ({source}); recomputed, it needs {format_bytes(peak)}")
    lines = []
    for run_id, blocks in sorted(_as_recompute(units).blocks.items()):
        run = model.graph.runs[run_id]
        layers = ",".join(spans([i + 1 for i in sorted(blocks)]))
        lines.append(f"{run_id}: recomputes blocks {layers} of {run.backbone}.{run.tower}: {why}")
    for _, name, _ in sorted(u for u in units if u[0] == "component"):
        lines.append(f"{name}: recomputes its heavy layers: {why}")
    return tuple(lines)


def choose_recompute(model, precision: str, batch_size: int, budget: int, source: str,
                     losses: dict[str, float] | None = None) -> Choice:
    """The smallest recomputation under which a training step of `batch_size` clips fits `budget` bytes
    (`losses`: the step's loss weights, a stage's; default the spec's; what trains is the model's own setting).
    `model` is built on the meta device; it is left planned with the choice. When even recomputing every
    eligible block does not fit, the choice is ALL and `fits` is False (the caller says so)."""

    def peak(units: set[Unit]) -> int:
        model.set_recompute(_as_recompute(units))
        return MemoryModel(model, precision, losses).bill(batch_size).peak

    model.set_recompute(ALL)
    eligible: list[Unit] = [("block", r, i) for r, blocks in model.plan.recompute.items() for i in sorted(blocks)]
    eligible += [("component", name, 0) for name in model.plan.recomputing_components]
    stored = peak(set())
    if stored <= budget:
        reason = (f"recomputes nothing: the step needs {format_bytes(stored)} at batch {batch_size}, within the "
                  f"budget {format_bytes(budget)} ({source})",) if eligible else ()
        model.set_recompute(Recompute({}, frozenset(), reason))
        return Choice(model.plan.choice, True, stored, stored)
    everything = peak(set(eligible))
    if everything > budget:
        model.set_recompute(Recompute(None, None, (
            f"does not fit: the step needs {format_bytes(everything)} at batch {batch_size} even recomputing every "
            f"frozen block it can, the budget is {format_bytes(budget)} ({source})",)))
        return Choice(model.plan.choice, False, everything, stored)
    saving = {u: stored - peak({u}) for u in eligible}
    order = sorted(eligible, key=lambda u: (-saving[u], u[1], -u[2]))
    chosen: set[Unit] = set()
    predicted = stored  # savings nearly add up: take what should suffice at once, then confirm by measuring
    for unit in order:
        chosen.add(unit)
        predicted -= saving[unit]
        if predicted <= budget:
            break
    now = peak(chosen)
    for unit in order[len(chosen):]:
        if now <= budget:
            break
        chosen.add(unit)
        now = peak(chosen)
    for unit in sorted(chosen, key=lambda u: (saving[u], u[1], u[2])):  # drop what is not needed after all
        without = peak(chosen - {unit})
        if without <= budget:
            chosen.discard(unit)
            now = without
    model.set_recompute(_as_recompute(chosen, _describe(model, chosen, stored, now, budget, source, batch_size)))
    return Choice(model.plan.choice, True, now, stored)

