"""The modules of the `fusion_transformer` kind (declared in fusion_transformer.py, which names `build` here)."""

from __future__ import annotations

import torch
from torch import nn

from composer.components.fusion.fusion_transformer import FusionParams
from composer.components.registry import NodeInfo


class FusionLayer(nn.Module):
    def __init__(self, width: int, p: FusionParams) -> None:
        super().__init__()
        self.norm_q, self.norm_kv = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attention = nn.MultiheadAttention(width, p.heads, batch_first=True)
        self.norm_mlp = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, int(width * p.mlp_ratio)), nn.GELU(),
                                 nn.Linear(int(width * p.mlp_ratio), width))
        nn.init.zeros_(self.attention.out_proj.weight)
        nn.init.zeros_(self.attention.out_proj.bias)
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.zeros_(self.mlp[2].bias)

    def forward(self, x: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        q = self.norm_q(x)
        kv = torch.cat([q, self.norm_kv(text)], dim=1)
        x = x + self.attention(q, kv, kv, need_weights=False)[0]
        return x + self.mlp(self.norm_mlp(x))


class FusionTransformer(nn.Module):
    def __init__(self, width: int, p: FusionParams) -> None:
        super().__init__()
        self.token = nn.Parameter(torch.zeros(1, 1, width))
        self.layers = nn.ModuleList(FusionLayer(width, p) for _ in range(p.layers))

    def forward(self, frames: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        b = frames.shape[0]
        x = torch.cat([frames.mean(1, keepdim=True) + self.token.to(frames.dtype), frames], dim=1)
        context = text.to(frames.dtype).unsqueeze(0).expand(b, -1, -1)
        for layer in self.layers:
            x = layer(x, context)
        return x[:, 0]


def build(p: FusionParams, info: NodeInfo) -> FusionTransformer:
    return FusionTransformer(info.in_types[0].shape[-1], p)
