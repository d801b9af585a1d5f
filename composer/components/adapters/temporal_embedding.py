"""Temporal position embedding for a per-frame tower: a learnable [T, D] added to every token of frame t
at the tower's input (the spatio-temporal positional encoding of Eq. 1 in Deng et al., Electronics 2024;
Vita-CLIP's `time_embed`). Starts at zero, so the tower starts unchanged."""

from __future__ import annotations

import torch
from torch import nn

from composer.components.registry import Kind, NoParams, SiteInfo, register


class TemporalEmbedding(nn.Module):
    def __init__(self, frames: int, width: int) -> None:
        super().__init__()
        self.embedding = nn.Parameter(torch.zeros(frames, width))

    def forward(self, x: torch.Tensor, ctx) -> torch.Tensor:  # [B*T, N, D]
        b, t = ctx.batch, ctx.frames
        return (x.view(b, t, *x.shape[1:]) + self.embedding[:t, None].to(x.dtype)).view_as(x)


def build(p: NoParams, site: SiteInfo) -> TemporalEmbedding:
    if site.layout != "frames":
        raise ValueError("temporal_embedding needs a per-frame visual tower")
    return TemporalEmbedding(site.frames, site.width)


register(Kind(
    name="temporal_embedding",
    summary="learnable per-frame position embedding added to every token at a per-frame tower's input",
    params=NoParams, build=build, uses=("sequential",), points=("input",),
    paper="Deng et al., Electronics 2024, Eq. 1; Vita-CLIP (Wasim et al., CVPR 2023)",
))
