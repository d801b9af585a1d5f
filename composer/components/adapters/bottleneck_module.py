"""The modules of the `bottleneck` kind (declared in bottleneck.py, which names `build` here)."""

from __future__ import annotations

import torch
from torch import nn

from composer.components.adapters.bottleneck import BottleneckParams
from composer.components.registry import SiteInfo


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "quick_gelu": QuickGELU}


class BottleneckAdapter(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, p: BottleneckParams, residual: bool) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(in_dim) if p.norm else nn.Identity()
        self.down = nn.Linear(in_dim, p.dim)
        self.act = ACTIVATIONS[p.activation]()
        self.drop = nn.Dropout(p.dropout)
        self.up = nn.Linear(p.dim, out_dim)
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        self.scale = p.scale
        self.residual = residual  # sequential use keeps the point's output and adds to it

    def forward(self, x: torch.Tensor, ctx=None) -> torch.Tensor:
        y = self.scale * self.up(self.drop(self.act(self.down(self.norm(x)))))
        return x + y if self.residual else y


def build(p: BottleneckParams, site: SiteInfo) -> BottleneckAdapter:
    if site.use == "sequential":
        return BottleneckAdapter(site.out_dim, site.out_dim, p, residual=True)
    return BottleneckAdapter(site.in_dim, site.out_dim, p, residual=False)
