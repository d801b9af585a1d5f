"""SSF: scale and shift the features at a point, y = gamma * x + beta (one vector each, per channel).

Lian et al., "Scaling & Shifting Your Features: A New Baseline for Efficient Model Tuning", NeurIPS 2022.
gamma starts at one and beta at zero, so the adapted model starts as the frozen backbone.

A composer plugin: the `composer.kinds` entry point in pyproject.toml names KIND; composer imports this module
only when a spec uses `ssf` (or a command needs every kind), and this module does not call `register`.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from composer.components.registry import Kind, Params, SiteInfo


class SSFParams(Params):
    init_scale: float = Field(1.0, description="gamma's starting value (1: start as the frozen backbone)")
    shift: bool = Field(True, description="learn beta too (false: scale only)")


class SSF(nn.Module):
    def __init__(self, width: int, p: SSFParams) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((width,), p.init_scale))
        self.shift = nn.Parameter(torch.zeros(width)) if p.shift else None

    def forward(self, x: torch.Tensor, ctx=None) -> torch.Tensor:
        y = x * self.scale
        return y + self.shift if self.shift is not None else y


def build(p: SSFParams, site: SiteInfo) -> SSF:
    return SSF(site.out_dim, p)


KIND = Kind(
    name="ssf", summary="scale and shift the features at a point, per channel (identity at the start)",
    params=SSFParams, build=build, paper="Lian et al., NeurIPS 2022 (SSF)",
    uses=("sequential",), points=("attn", "mlp", "block", "output"),
)
