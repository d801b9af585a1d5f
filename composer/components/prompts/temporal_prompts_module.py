"""The modules of the `temporal_prompts` kind (declared in temporal_prompts.py, which names `build` here)."""

from __future__ import annotations

import torch
from torch import nn

from composer.components.prompts.reparameterization import Reparameterization
from composer.components.prompts.temporal_prompts import TemporalPromptParams
from composer.components.registry import SiteInfo


class TemporalPrompts(nn.Module):
    def __init__(self, site: SiteInfo, p: TemporalPromptParams) -> None:
        super().__init__()
        d, t = site.width, site.frames
        self.cls_proj = nn.Linear(d, d)
        self.norm = nn.LayerNorm(d)
        self.attention = nn.MultiheadAttention(d, d // p.head_width, batch_first=True)
        self.global_prompts = nn.Parameter(torch.randn(p.global_prompts, d) * 0.02)
        self.interchange = nn.Parameter(torch.randn(t, d) * 0.02)
        self.encoder = Reparameterization(d, p.encoder_width, p.encoder, p.residual)
        self.gate = nn.Parameter(torch.zeros(1)) if p.gated else None

    def forward(self, x: torch.Tensor, ctx) -> torch.Tensor:
        b, t = ctx.batch, ctx.frames
        d = x.shape[-1]
        cls = self.cls_proj(x[:, 0]).view(b, t, d)  # X_cls
        y = self.norm(cls)
        summary = self.attention(y, y, y, need_weights=False)[0] + cls  # C, [B, T, D]
        glob = self.global_prompts.to(x.dtype).expand(b, t, -1, -1)  # G, [B, T, S, D]
        inter = self.interchange[:t].to(x.dtype) + cls  # I + X_cls, [B, T, D]: the same T tokens for every frame
        prompts = torch.cat([summary.unsqueeze(2), glob, inter.unsqueeze(1).expand(b, t, t, d)], dim=2)
        return self.encoder(prompts).reshape(b * t, -1, d)


def build(p: TemporalPromptParams, site: SiteInfo) -> TemporalPrompts:
    return TemporalPrompts(site, p)
