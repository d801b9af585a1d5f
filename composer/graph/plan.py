"""The plan: what needs autograd and what can be computed once.

Knowing which parameters train, the compiler decides per tower run where autograd must start (the
frozen blocks below the first trainable attachment run without it; a frozen tower with nothing
trainable runs without it entirely), and which tensors depend only on the class names through frozen
parts (a frozen text tower over fixed prompts), so they are computed once per class set and reused.
`--no-plan` turns both off; outputs and gradients are the same either way (tests/test_plan.py).

Recomputation is a choice among the eligible frozen blocks (and the components that can recompute
themselves): `Recompute` names the chosen ones; `ALL` takes every eligible one, `NONE` none.
composer/compiler/budget.py picks the smallest choice whose memory bill fits a budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from composer.graph.nodes import Graph
from composer.spec.ir import ClassesInput
from composer.spec.site import spans


@dataclass(frozen=True)
class Recompute:
    """What recomputes in the backward pass: frozen blocks per run id, and self-recomputing components.
    None means every eligible one; `reason` is what the plan prints about the choice."""

    blocks: dict[str, frozenset[int]] | None = None
    components: frozenset[str] | None = None
    reason: tuple[str, ...] = ()

    def takes_blocks(self, run_id: str, eligible: frozenset[int]) -> frozenset[int]:
        return eligible if self.blocks is None else eligible & self.blocks.get(run_id, frozenset())

    def takes_component(self, name: str) -> bool:
        return self.components is None or name in self.components


ALL = Recompute()
NONE = Recompute({}, frozenset())


@dataclass
class Plan:
    enabled: bool
    choice: Recompute = ALL
    grad_from: dict[str, int | None] = field(default_factory=dict)  # run id -> first block with autograd
    constant: set[str] = field(default_factory=set)  # tensors fixed for a given class set
    cached_nodes: set[str] = field(default_factory=set)  # run/call nodes whose outputs are cached
    recompute: dict[str, frozenset[int]] = field(default_factory=dict)  # run id -> frozen blocks recomputed
    recomputing_components: list[str] = field(default_factory=list)  # trainable parts that recompute themselves

    def describe(self, graph: Graph) -> list[str]:
        lines = []
        for run_id, start in self.grad_from.items():
            depth = graph.shape(graph.runs[run_id].backbone, graph.runs[run_id].tower).depth
            if start is None:
                lines.append(f"{run_id}: no autograd (nothing trainable in or after it)")
            elif start == 0:
                lines.append(f"{run_id}: autograd from the input")
            elif start >= depth:
                lines.append(f"{run_id}: no autograd through the blocks, only after the last")
            else:
                lines.append(f"{run_id}: blocks 1-{start} without autograd, autograd from block {start + 1}")
        for run_id, blocks in self.recompute.items():
            if blocks:
                layers = ",".join(spans([i + 1 for i in blocks]))
                lines.append(f"{run_id}: frozen blocks {layers} keep only their input; recomputed in the backward pass")
        for name in self.recomputing_components:
            lines.append(f"{name}: keeps only the inputs of its heavy layers; recomputed in the backward pass")
        lines.extend(self.choice.reason)
        for node in sorted(self.cached_nodes):
            lines.append(f"{node[2:]}: computed once per class set and reused")
        return lines


def _first_trainable_block(graph: Graph, run, trainable: set[str]) -> int | None:
    if not run.active:
        return None
    tower = graph.shape(run.backbone, run.tower)
    if run.backbone in trainable:
        return 0
    starts = []
    for a in graph.attachments_of(run.backbone, run.tower):
        if a.name not in trainable:
            continue
        if a.layers:
            starts.append(min(a.layers))
        else:
            starts.append(tower.depth if a.point == "output" else 0)
    return min(starts) if starts else None


def _recomputed(graph: Graph, run, start: int | None, trainable: set[str]) -> frozenset[int]:
    """Frozen blocks that gradients only pass through: storing their activations buys nothing a second
    forward pass cannot give, so they keep just their input (blocks with taps record, so they stay)."""
    if start is None or run.backbone in trainable:
        return frozenset()
    tower = graph.shape(run.backbone, run.tower)
    tapped = {i for a in graph.attachments_of(run.backbone, run.tower) if a.use == "tap" for i in a.layers}
    return frozenset(i for i in range(start, tower.depth) if i not in tapped)


def make_plan(graph: Graph, trainable: set[str], enabled: bool = True, recompute: bool | Recompute = True) -> Plan:
    """`trainable`: names of components with trainable parameters and of backbones that are not frozen;
    `recompute`: True for every eligible block (ALL), False for none, or a chosen `Recompute`."""
    choice = recompute if isinstance(recompute, Recompute) else ALL if recompute else NONE
    plan = Plan(enabled, choice)
    for run_id, run in graph.runs.items():
        plan.grad_from[run_id] = _first_trainable_block(graph, run, trainable) if enabled else 0
        if enabled:
            eligible = _recomputed(graph, run, plan.grad_from[run_id], trainable)
            plan.recompute[run_id] = choice.takes_blocks(run_id, eligible)
    if not enabled:
        return plan
    constant = {n for n, i in graph.spec.inputs.items() if isinstance(i, ClassesInput)}
    for node in graph.order():
        if node.startswith("r:"):
            run = graph.runs[node[2:]]
            fixed = run.inputs[0] in constant and plan.grad_from[run.id] is None
            outs = list(run.outputs) + run.taps
        else:
            call = graph.calls[node[2:]]
            fixed = all(a in constant for a in call.inputs) and call.component not in trainable
            outs = [call.out]
        if fixed:
            constant.update(outs)
            plan.cached_nodes.add(node)
    plan.constant = constant
    return plan
