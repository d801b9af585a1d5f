"""Cosine-similarity logits: scale * <v / |v|, t / |t|> between clip and class-text embeddings
(CLIP, Radford et al., ICML 2021, Fig. 3). With `learnable` the scale is exp of a trained parameter,
clamped at 100 as in CLIP."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from composer.components.registry import Kind, Params, register
from composer.tensor_types import TType, match


class CosineLogitsParams(Params):
    scale: float = Field(100.0, gt=0, description="logit scale (1 / temperature)")
    learnable: bool = False


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


def infer(p: CosineLogitsParams, ins: list[TType]) -> TType:
    if len(ins[0].shape) == 3 and ins[0].shape[1] == "C":  # one clip embedding per class (word-query pooling)
        b = match(ins[0], ("B", "C", "D"), what="video embedding")
    else:
        b = match(ins[0], ("B", "D"), what="video embedding")
    b = match(ins[1], ("C", "D"), b, what="class embeddings")
    return TType((b["B"], b["C"]))


register(Kind(
    name="cosine_logits",
    summary="([B, D] or [B, C, D], [C, D]) -> [B, C]: scaled cosine similarity between clips and class texts",
    params=CosineLogitsParams, build=lambda p, info: CosineLogits(p), inputs=("video", "text"), infer=infer,
    paper="CLIP (Radford et al., ICML 2021), Fig. 3",
))
