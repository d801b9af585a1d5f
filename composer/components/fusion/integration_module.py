"""The modules of the `integration` kind (declared in integration.py, which names `build` here)."""

from __future__ import annotations

import torch
from torch import nn

from composer.components.fusion.integration import IntegrationParams
from composer.components.registry import NodeInfo


class Integration(nn.Module):
    def __init__(self, width: int, p: IntegrationParams) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.proj = nn.Linear(width, p.out_dim)

    def forward(self, *features: torch.Tensor) -> torch.Tensor:
        return nn.functional.gelu(self.proj(self.norm(torch.cat(features, dim=-1))))


def build(p: IntegrationParams, info: NodeInfo) -> Integration:
    return Integration(sum(t.shape[-1] for t in info.in_types), p)
