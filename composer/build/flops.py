"""Counting FLOPs of a built model on the meta device (no weights, no compute).

torch's FlopCounterMode counts matmuls and convolutions at the dispatcher. Attention is counted
through the math SDPA backend, which lowers to batched matmuls (the fused CPU kernel has no FLOP
formula and would count as zero). FLOPs are split by what they depend on: per clip (everything that
depends on the video) and per class set (what depends only on the class names, computed once by the
plan). One multiply-add is two FLOPs; GMACs = GFLOPs / 2.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from composer.graph.graph import input_types
from composer.spec.ir import ClassesInput, LabelInput, VideoInput


@dataclass
class FlopReport:
    per_clip: int = 0  # forward FLOPs for one clip
    per_class_set: int = 0  # forward FLOPs computed once for the whole class set
    by_node: dict[str, int] = field(default_factory=dict)

    @property
    def gflops(self) -> float:
        return self.per_clip / 1e9

    @property
    def gmacs(self) -> float:
        return self.per_clip / 2e9


def meta_batch(model, clips: int = 1) -> dict:
    """A batch of `clips` clips with the spec's input shapes, on the meta device."""
    spec = model.spec
    batch: dict = {}
    for name, t in input_types(spec).items():
        inp = spec.inputs[name]
        if isinstance(inp, VideoInput):
            batch[name] = torch.empty((clips,) + t.shape[1:], device="meta")
        elif isinstance(inp, LabelInput):
            batch[name] = torch.zeros(clips, dtype=torch.long, device="meta")
        elif isinstance(inp, ClassesInput):
            batch[name] = [f"class {i}" for i in range(model.graph.num_classes)]
    return batch


def count_flops(model, clips: int = 1) -> FlopReport:
    """FLOPs of the model's forward pass for `clips` clips (the model must live on the meta device)."""
    report = FlopReport()
    constant = model.plan.constant if model.plan.enabled else set()
    batch = meta_batch(model, clips)
    values = {k: v for k, v in batch.items()}
    outputs = [model.graph.predict] if model.graph.predict else list(model.spec.losses)  # inference
    was_fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
            for node in model.needed(outputs or ["loss"]):
                with FlopCounterMode(display=False) as counter:
                    values.update(model.run_node(node, values))
                flops = counter.get_total_flops()
                report.by_node[node[2:]] = flops
                if all(t in constant for t in model._produces(node)):
                    report.per_class_set += flops
                else:
                    report.per_clip += flops
    finally:
        torch.backends.mha.set_fastpath_enabled(was_fastpath)
    return report
