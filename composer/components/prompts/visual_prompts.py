"""Visual prompt tuning: learnable tokens that the attention of a block (deep) or of the whole tower
(shallow) can attend to (Jia et al., ECCV 2022, Eq. 5 shallow and Eq. 6 deep).

Deep prompts attach at `blocks[...].tokens`: one prompt set per block, seen by that block's attention
only and dropped after it (VPT-deep discards them at the next layer too). Shallow prompts attach at the
tower's `input` and travel through every block, dropped before the tower's output.
With `gated: true` (deep prompts only) the prompts are attended separately and added through tanh(gate), gate = 0 at start
(the zero-init attention of LLaMA-Adapter, Zhang et al., ICLR 2024, Eq. 7): the model starts as the
frozen backbone, which plain VPT cannot do.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from composer.components.registry import Kind, Params, SiteInfo, register


class VisualPromptParams(Params):
    tokens: int = Field(8, ge=1, description="prompt tokens per block (deep) or in all (shallow)")
    init: Literal["uniform", "normal", "zeros"] = Field(
        "uniform", description="uniform(+-sqrt(6 / (3 p^2 + D))) as VPT, normal(0.02), or zeros")
    dropout: float = Field(0.0, ge=0, lt=1)
    gated: bool = Field(False, description="attend prompts separately through a zero-initialised tanh gate "
                                           "(deep prompts only: each block applies its gate)")


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


register(Kind(
    name="visual_prompts",
    summary="learnable tokens seen by attention: deep (per block, at .tokens) or shallow (at the tower input)",
    params=VisualPromptParams, build=build,
    paper="VPT (Jia et al., ECCV 2022), Eq. 5-6; gate: LLaMA-Adapter (Zhang et al., ICLR 2024), Eq. 7",
    uses=("prompt",), points=("tokens", "input"),
))
