"""Bottleneck adapter: x -> s * up(act(down(x))), parallel to a point or after it.

Houlsby et al. 2019 ("Parameter-Efficient Transfer Learning for NLP") put it after a sub-layer;
AdaptFormer (Chen et al., NeurIPS 2022, Eq. 2-3) runs it in parallel to the MLP with a scale s = 0.1.
The up-projection starts at zero, so the adapted model starts as the frozen backbone.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from composer.components.registry import Kind, Params, SiteInfo, register


class BottleneckParams(Params):
    dim: int = Field(64, ge=1, description="bottleneck width r")
    scale: float = Field(0.1, description="s, multiplies the adapter's output")
    activation: Literal["relu", "gelu", "quick_gelu"] = "relu"
    dropout: float = Field(0.0, ge=0, lt=1)
    norm: bool = Field(False, description="LayerNorm on the adapter's input")


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


register(Kind(
    name="bottleneck_adapter",
    summary="down-project, activation, zero-initialised up-project, times a scale; parallel or sequential",
    params=BottleneckParams, build=build,
    paper="Houlsby et al., ICML 2019; AdaptFormer (Chen et al., NeurIPS 2022), Eq. 2-3",
    uses=("parallel", "sequential"),
    points=("attn", "mlp", "block", "attn.qkv", "attn.q", "attn.k", "attn.v", "attn.out", "mlp.fc1", "mlp.fc2",
            "input", "output"),
))
