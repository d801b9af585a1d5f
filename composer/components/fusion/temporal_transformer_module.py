"""The modules of the `temporal_transformer` kind (declared in temporal_transformer.py, which names `build` here)."""

from __future__ import annotations

import torch
from torch import nn

from composer.components.fusion.temporal_transformer import TemporalTransformerParams
from composer.components.registry import NodeInfo


class TemporalTransformer(nn.Module):
    def __init__(self, frames: int, width: int, p: TemporalTransformerParams) -> None:
        super().__init__()
        self.position = nn.Parameter(torch.zeros(frames, width))
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(width, p.heads, int(width * p.mlp_ratio), p.dropout, activation="gelu",
                                       batch_first=True, norm_first=True)
            for _ in range(p.layers))
        for layer in self.layers:
            nn.init.zeros_(layer.self_attn.out_proj.weight)
            nn.init.zeros_(layer.self_attn.out_proj.bias)
            nn.init.zeros_(layer.linear2.weight)
            nn.init.zeros_(layer.linear2.bias)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames + self.position[: frames.shape[1]].to(frames.dtype)
        for layer in self.layers:
            x = layer(x)
        return x.mean(dim=1)


def build(p: TemporalTransformerParams, info: NodeInfo) -> TemporalTransformer:
    _, frames, width = info.in_types[0].shape
    return TemporalTransformer(frames, width, p)
