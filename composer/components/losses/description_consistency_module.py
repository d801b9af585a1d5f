"""The modules of the `description_consistency` kind (declared in description_consistency.py, which names `build` here)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from composer.components.losses.description_consistency import ConsistencyParams
from composer.components.losses.fp32 import at_least_fp32
from composer.components.registry import NodeInfo


class DescriptionConsistency(nn.Module):
    def __init__(self, p: ConsistencyParams) -> None:
        super().__init__()
        self.reduction = p.reduction

    def forward(self, classes: torch.Tensor, *descriptions: torch.Tensor) -> torch.Tensor:
        t = F.normalize(at_least_fp32(classes), dim=-1)
        terms = sum(1 - (t * F.normalize(at_least_fp32(d).detach(), dim=-1)).sum(-1) for d in descriptions)
        return terms.mean() if self.reduction == "mean" else terms.sum()


def build(p: ConsistencyParams, info: NodeInfo) -> DescriptionConsistency:
    return DescriptionConsistency(p)
