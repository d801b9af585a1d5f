"""The modules of the `cosine_logits` kind (declared in cosine_logits.py, which names `build` here)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from composer.components.heads.cosine_logits import CosineLogitsParams
from composer.components.registry import NodeInfo


class CosineLogits(nn.Module):
    def __init__(self, p: CosineLogitsParams) -> None:
        super().__init__()
        log_scale = torch.tensor(math.log(p.scale))
        if p.learnable:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale, persistent=False)

    def forward(self, video: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        scale = self.log_scale.clamp(max=math.log(100.0)).exp()
        v, t = F.normalize(video, dim=-1), F.normalize(text, dim=-1).to(video.dtype)
        if v.dim() == 3:  # one clip embedding per class, [B, C, D]
            return scale * (v * t.unsqueeze(0)).sum(-1)
        return scale * v @ t.t()


def build(p: CosineLogitsParams, info: NodeInfo) -> CosineLogits:
    return CosineLogits(p)
