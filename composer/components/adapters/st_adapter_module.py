"""The modules of the `st_adapter` kind (declared in st_adapter.py, which names `build` here)."""

from __future__ import annotations

import torch
from torch import nn

from composer.components.adapters.st_adapter import STAdapterParams
from composer.components.registry import SiteInfo


class STAdapter(nn.Module):
    def __init__(self, width: int, p: STAdapterParams) -> None:
        super().__init__()
        self.down = nn.Linear(width, p.dim)
        self.conv = nn.Conv3d(p.dim, p.dim, p.kernel, padding=tuple(k // 2 for k in p.kernel), groups=p.dim)
        self.up = nn.Linear(p.dim, width)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor, ctx) -> torch.Tensor:  # [B*T, prefix + N + prompts, D]
        b, t = ctx.batch, ctx.frames
        h, w = ctx.grid
        head, patches, tail = ctx.split(x)  # class token (and registers, prompts) pass through
        y = self.down(patches).view(b, t, h, w, -1).permute(0, 4, 1, 2, 3)
        y = self.conv(y).permute(0, 2, 3, 4, 1).reshape(b * t, h * w, -1)
        return torch.cat([head, patches + self.up(y), tail], dim=1)


def build(p: STAdapterParams, site: SiteInfo) -> STAdapter:
    return STAdapter(site.width, p)
