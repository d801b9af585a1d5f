"""The modules of the `score_fusion` kind (declared in score_fusion.py, which names `build` here)."""

from __future__ import annotations

import torch
from torch import nn

from composer.components.heads.score_fusion import ScoreFusionParams
from composer.components.registry import NodeInfo


class ScoreFusion(nn.Module):
    def __init__(self, p: ScoreFusionParams) -> None:
        super().__init__()
        self.weight = p.weight

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.weight * a + (1 - self.weight) * b


def build(p: ScoreFusionParams, info: NodeInfo) -> ScoreFusion:
    return ScoreFusion(p)
