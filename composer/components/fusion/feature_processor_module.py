"""The modules of the `feature_processor` kind (declared in feature_processor.py, which names `build` here)."""

from __future__ import annotations

import torch
from torch import nn

from composer.components.fusion.feature_processor import FeatureProcessorParams
from composer.components.registry import NodeInfo


class FeatureProcessor(nn.Module):
    def __init__(self, width: int, p: FeatureProcessorParams) -> None:
        super().__init__()
        self.query = nn.Parameter(torch.randn(1, 1, width) * 0.02)
        self.norm = nn.LayerNorm(width)
        self.attention = nn.MultiheadAttention(width, p.heads, batch_first=True)
        hidden = p.hidden or width
        self.mlp = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, p.out_dim))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # [B, N, D]
        kv = self.norm(tokens)
        pooled = self.attention(self.query.expand(tokens.shape[0], -1, -1).to(kv.dtype), kv, kv,
                                need_weights=False)[0][:, 0]
        return self.mlp(pooled)


def build(p: FeatureProcessorParams, info: NodeInfo) -> FeatureProcessor:
    return FeatureProcessor(info.in_types[0].shape[-1], p)
