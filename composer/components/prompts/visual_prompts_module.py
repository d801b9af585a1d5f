"""The modules of the `visual_prompts` kind (declared in visual_prompts.py, which names `build` here)."""

from __future__ import annotations

import math

import torch
from torch import nn

from composer.components.prompts.visual_prompts import VisualPromptParams
from composer.components.registry import SiteInfo


class VisualPrompts(nn.Module):
    def __init__(self, width: int, patch: int, p: VisualPromptParams) -> None:
        super().__init__()
        self.prompts = nn.Parameter(torch.zeros(p.tokens, width))
        if p.init == "uniform":
            bound = math.sqrt(6.0 / (3 * patch * patch + width))
            nn.init.uniform_(self.prompts, -bound, bound)
        elif p.init == "normal":
            nn.init.normal_(self.prompts, std=0.02)
        self.drop = nn.Dropout(p.dropout)
        self.gate = nn.Parameter(torch.zeros(1)) if p.gated else None

    def forward(self, x: torch.Tensor, ctx=None) -> torch.Tensor:
        return self.drop(self.prompts.to(x.dtype)).unsqueeze(0).expand(x.shape[0], -1, -1)


def build(p: VisualPromptParams, site: SiteInfo) -> VisualPrompts:
    return VisualPrompts(site.width, site.patch or 16, p)
