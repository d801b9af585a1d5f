"""Counting FLOPs of a built model on the meta device (no weights, no compute).

torch's FlopCounterMode counts matmuls and convolutions at the dispatcher. Attention is counted
through the math SDPA backend, which lowers to batched matmuls (the fused CPU kernel has no FLOP
formula and would count as zero). FLOPs are split by what they depend on: per clip (everything that
depends on the video) and per class set (what depends only on the class names: at inference it is
computed once for all clips, even where it trained). One multiply-add is two FLOPs; GMACs = GFLOPs / 2.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from composer.graph.infer import input_types
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


def placeholder_texts(shape: tuple, classes: int):
    """Texts of the right shape for counting (text towers pad to a fixed length, so the words do not matter;
    class-text files need not exist for `composer build`)."""
    rows = classes if shape[0] == "C" else shape[0]
    if len(shape) == 1:
        return [f"text {i}" for i in range(rows)]
    return [[f"text {i} {j}" for j in range(shape[1])] for i in range(rows)]


def count_flops(model, clips: int = 1) -> FlopReport:
    """FLOPs of the model's forward pass for `clips` clips (the model must live on the meta device)."""
    report = FlopReport()
    videos = [f"t:{n}" for n, i in model.spec.inputs.items() if isinstance(i, VideoInput)]
    per_clip = set().union(*(nx.descendants(model.graph.g, v) for v in videos if v in model.graph.g))
    batch = meta_batch(model, clips)
    values = {k: v for k, v in batch.items()}
    outputs = [model.graph.predict] if model.graph.predict else list(model.spec.losses)  # inference
    was_fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with sdpa_kernel(SDPBackend.MATH):  # autograd stays on: FlopCounterMode's module tracker needs it
            for node in model.needed(outputs or ["loss"]):
                if node.startswith("c:") and model.graph.types[node[2:]].dtype == "str":
                    values[node[2:]] = placeholder_texts(model.graph.types[node[2:]].shape, model.graph.num_classes)
                    report.by_node[node[2:]] = 0
                    continue
                with FlopCounterMode(display=False) as counter:
                    values.update(model.run_node(node, values))
                flops = counter.get_total_flops()
                report.by_node[node[2:]] = flops
                if node in per_clip:
                    report.per_clip += flops
                else:
                    report.per_class_set += flops
    finally:
        torch.backends.mha.set_fastpath_enabled(was_fastpath)
    return report
