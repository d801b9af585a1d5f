"""The modules of the `mean` kind (declared in mean.py, which names `build` here)."""

from __future__ import annotations

import torch
from torch import nn

from composer.components.fusion.mean import MeanParams
from composer.components.registry import NodeInfo


class Mean(nn.Module):
    def __init__(self, axis: int) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=self.axis)


def build(p: MeanParams, info: NodeInfo) -> Mean:
    return Mean(p.axis)
