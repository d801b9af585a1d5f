"""The built model: one nn.Module that runs the graph in order and returns named tensors and the loss."""

from __future__ import annotations

from typing import Any, Iterable

import networkx as nx
import torch
from torch import nn

from composer.components.registry import Kind, get_kind
from composer.graph.nodes import Graph
from composer.graph.plan import Plan, Recompute, make_plan
from composer.spec.ir import ClassesInput


class ComposedModel(nn.Module):
    def __init__(self, graph: Graph, components: nn.ModuleDict, plan: Plan, trainable: set[str],
                 owners: dict[str, str] | None = None) -> None:
        super().__init__()
        self.graph = graph
        self.owners = owners or {}  # "backbone.param" -> the component that owns it (weight deltas)
        self.spec = graph.spec
        self.backbones = nn.ModuleDict(graph.backbones)
        self.components = components
        self.plan = plan
        self.trainable_parts = trainable
        self._trainable_names = {n for n, p in self.named_parameters() if p.requires_grad}
        self.order = graph.order()
        self._schedules: dict[frozenset[str], tuple[str, ...]] = {}  # outputs -> the nodes they need, in order
        self._cache: dict[tuple, dict[str, Any]] = {}
        self.classes_input = next((n for n, i in self.spec.inputs.items() if isinstance(i, ClassesInput)), None)
        self._plan_components()
        self.needed(self.default_outputs(self.spec.losses))  # the training step's schedule, at build time

    def default_outputs(self, losses: dict[str, float]) -> list[str]:
        """What forward computes when not told: the loss (when there are loss terms) and the prediction."""
        return (["loss"] if losses else []) + ([self.graph.predict] if self.graph.predict else [])

    def _plan_components(self) -> None:
        """Trainable components that can recompute their own activations (kinds declaring `recomputes`, such
        as TDS-CLIP's side network) follow the plan's recomputation setting."""
        for name, module in self.components.items():
            if self._kind_of(name).recomputes:
                module.recompute = (self.plan.enabled and self.plan.choice.takes_component(name)
                                    and name in self.trainable_parts)
                if module.recompute:
                    self.plan.recomputing_components.append(name)

    # -- running
    def needed(self, outputs: Iterable[str]) -> tuple[str, ...]:
        """Run/call nodes needed for `outputs` (tensor names, or "loss"), in execution order. Worked out on the
        graph once per set of outputs: a training step only looks its schedule up."""
        key = frozenset(outputs)
        if key not in self._schedules:
            targets = {"loss" if o == "loss" else f"t:{o}" for o in key}
            want = set().union(*(nx.ancestors(self.graph.g, t) | {t} for t in targets if t in self.graph.g))
            self._schedules[key] = tuple(n for n in self.order if n in want)
        return self._schedules[key]

    def _cache_key(self, batch: dict[str, Any]) -> tuple | None:
        """Class-set constants are reused for the same class names, device and autocast dtype."""
        if self.classes_input is None or self.classes_input not in batch:
            return None
        device = next(self.parameters()).device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else None
        return (tuple(batch[self.classes_input]), device, dtype)

    def run_node(self, node: str, values: dict[str, Any]) -> dict[str, Any]:
        """Compute one run or call node; returns the tensors it produces."""
        if node.startswith("r:"):
            run = self.graph.runs[node[2:]]
            tower = self.graph.backbones[run.backbone].towers[run.tower]
            outs = tower.run(values[run.inputs[0]], self.plan.grad_from[run.id], run.active,
                             self.plan.recompute.get(run.id, frozenset()))
            produced = {tensor: outs[output] for tensor, output in run.outputs.items()}
            produced.update({tap: outs[f"tap:{tap}"] for tap in run.taps})
            return produced
        call = self.graph.calls[node[2:]]
        return {call.out: self.components[call.component](*[values[a] for a in call.inputs])}

    def run_tower(self, run_id: str, values: dict[str, Any]) -> dict[str, Any]:
        """Run one tower run of the graph (by its id) on `values`; returns the tensors it produces."""
        return self.run_node(f"r:{run_id}", values)

    def forward(self, batch: dict[str, Any], outputs: Iterable[str] | None = None,
                losses: dict[str, float] | None = None) -> dict[str, Any]:
        """Run what `outputs` need (default: the loss and the prediction) and return every tensor computed.

        `losses` overrides the spec's loss weights (multi-stage training)."""
        losses = self.spec.losses if losses is None else losses
        if outputs is None:
            outputs = self.default_outputs(losses)
        # inputs, and any flow tensor given precomputed (cached frozen features): nodes that would make it are skipped
        values: dict[str, Any] = {k: v for k, v in batch.items() if k in self.spec.inputs or k in self.graph.types}
        key = self._cache_key(batch) if self.plan.enabled else None
        cached = self._cache.get(key, {}) if key is not None else {}
        values.update(cached)
        for node in self.needed(outputs):
            produces = self._produces(node)
            if all(t in values for t in produces):
                continue
            missing = [a for a in self._inputs(node) if a not in values]
            if missing:
                raise KeyError(f"the batch has no {', '.join(missing)} (needed by {node[2:]})")
            new = self.run_node(node, values)
            values.update(new)
            if key is not None and node in self.plan.cached_nodes:
                self._cache.setdefault(key, {}).update(new)
        if "loss" in outputs or any(o == "loss" for o in outputs):
            terms = [w * values[n] for n, w in losses.items() if w]
            values["loss"] = torch.stack(terms).sum() if terms else None
        return values

    def _produces(self, node: str) -> list[str]:
        if node.startswith("r:"):
            run = self.graph.runs[node[2:]]
            return list(run.outputs) + run.taps
        return [node[2:]]

    def _inputs(self, node: str) -> tuple[str, ...]:
        return self.graph.runs[node[2:]].inputs if node.startswith("r:") else self.graph.calls[node[2:]].inputs

    def use_dataset_files(self, files: dict) -> None:
        """Give components that read dataset-provided files (`@name`) the dataset's files."""
        for name, module in self.components.items():
            if self._kind_of(name).binds_dataset:
                module.bind_dataset(files)
        self.clear_cache()

    def clear_cache(self) -> None:
        self._cache.clear()

    def train(self, mode: bool = True) -> "ComposedModel":
        """Frozen backbones stay in eval mode (no dropout or drop-path noise in parts that do not learn)."""
        super().train(mode)
        for name, backbone in self.backbones.items():
            if self.spec.backbones[name].frozen:
                backbone.train(False)
        return self

    # -- what trains
    def set_trainable(self, parts: set[str]) -> None:
        """Train only `parts` (a stage's `trains`): freeze the rest and re-plan autograd for that set."""
        for name, param in self.named_parameters():
            param.requires_grad_(name in self._trainable_names and self.parameter_owner(name) in parts)
        self.trainable_parts = set(parts) & {self.parameter_owner(n) for n in self._trainable_names}
        self.set_recompute(self.plan.choice)

    def set_recompute(self, choice: Recompute | bool) -> None:
        """Re-plan with the recomputation `choice` (True: every eligible block, False: none)."""
        self.plan = make_plan(self.graph, self.trainable_parts, self.plan.enabled, choice)
        self._plan_components()
        self.clear_cache()

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """Every parameter the spec trains (in any stage): what checkpoints hold."""
        return {n: p for n, p in self.named_parameters() if n in self._trainable_names}

    def parameter_owner(self, name: str) -> str:
        """Which component or backbone a parameter belongs to."""
        parts = name.split(".")
        if parts[0] == "components":
            return parts[1]
        return self.owners.get(name.split(".", 1)[1], parts[1])

    def _kind_of(self, component: str) -> Kind:
        return get_kind(self.spec.components[component].kind)
