"""Temporal mean pooling: a clip embedding as the mean of its frame embeddings (the CLIP video baseline,
e.g. ActionCLIP's "MeanP", Wang et al. 2021). Blind to frame order by construction.
"""

from __future__ import annotations

from composer.components.registry import Kind, NoParams, register
from composer.lazy import Lazy
from composer.tensor_types import TType, match


def infer(p: NoParams, ins: list[TType]) -> TType:
    b = match(ins[0], ("B", "T", "D"), what="frames")
    return TType((b["B"], b["D"]))


register(Kind(
    name="temporal_mean", summary="[B, T, D] -> [B, D] by averaging over frames",
    params=NoParams, inputs=("frames",), infer=infer,
    paper="ActionCLIP mean pooling (Wang et al., arXiv 2109.08472)",
    build=Lazy("composer.components.fusion.temporal_mean_module:build"),
    trains=False,
))
