"""The modules of the `temporal_mean` kind (declared in temporal_mean.py, which names `build` here)."""

from __future__ import annotations

import torch
from torch import nn

from composer.components.registry import NodeInfo, NoParams


class TemporalMean(nn.Module):
    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return frames.mean(dim=1)


def build(p: NoParams, info: NodeInfo) -> TemporalMean:
    return TemporalMean()
