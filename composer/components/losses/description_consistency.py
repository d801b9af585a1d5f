"""Description consistency (MSTA, Chen et al., CVPR 2025, Sec. 3.3): keep the trainable text branch's
class embedding close to what the frozen text encoder makes of descriptions of that class:
    L_CC = mean_c [ (1 - cos(t_c, mean_n s_{c,n})) + (1 - cos(t_c, mean_n u_{c,n})) ]
with s the N spatial ("what it looks like") and u the N temporal ("the steps over time") descriptions,
each averaged over its N sentences first (the `mean` kind). The reduction over classes (mean or sum)
is not stated in the paper; mean is the default. Weighted by alpha = 1 in the total loss."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from composer.components.registry import Kind, Params, register
from composer.tensor_types import SCALAR, TType, match
from composer.components.losses import at_least_fp32


class ConsistencyParams(Params):
    reduction: Literal["mean", "sum"] = Field("mean", description="over classes")


class DescriptionConsistency(nn.Module):
    def __init__(self, p: ConsistencyParams) -> None:
        super().__init__()
        self.reduction = p.reduction

    def forward(self, classes: torch.Tensor, *descriptions: torch.Tensor) -> torch.Tensor:
        t = F.normalize(at_least_fp32(classes), dim=-1)
        terms = sum(1 - (t * F.normalize(at_least_fp32(d).detach(), dim=-1)).sum(-1) for d in descriptions)
        return terms.mean() if self.reduction == "mean" else terms.sum()


def infer(p: ConsistencyParams, ins: list[TType]) -> TType:
    b = match(ins[0], ("C", "D"), what="class embeddings")
    for i, t in enumerate(ins[1:], 1):
        match(t, ("C", "D"), b, what=f"description embeddings #{i}")
    return SCALAR


register(Kind(
    name="description_consistency",
    summary="([C, D] trainable class embeddings, [C, D] description embeddings...) -> loss: cosine distance "
            "to each set of frozen description embeddings",
    params=ConsistencyParams, build=lambda p, info: DescriptionConsistency(p),
    inputs=("classes", "descriptions..."), infer=infer, is_loss=True,
    paper="MSTA (Chen et al., CVPR 2025), Sec. 3.3, consistency constraint",
))
