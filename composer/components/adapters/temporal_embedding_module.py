"""The modules of the `temporal_embedding` kind (declared in temporal_embedding.py, which names `build` here)."""

from __future__ import annotations

import torch
from torch import nn

from composer.components.registry import NoParams, SiteInfo


class TemporalEmbedding(nn.Module):
    def __init__(self, frames: int, width: int) -> None:
        super().__init__()
        self.embedding = nn.Parameter(torch.zeros(frames, width))

    def forward(self, x: torch.Tensor, ctx) -> torch.Tensor:  # [B*T, N, D]
        b, t = ctx.batch, ctx.frames
        return (x.view(b, t, *x.shape[1:]) + self.embedding[:t, None].to(x.dtype)).view_as(x)


def build(p: NoParams, site: SiteInfo) -> TemporalEmbedding:
    return TemporalEmbedding(site.frames, site.width)
