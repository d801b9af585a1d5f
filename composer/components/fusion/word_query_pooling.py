"""Word-query frame pooling (Deng et al., Electronics 2024, Eq. 6-7): each word of a class label scores
every frame, the scores are softmaxed over frames and averaged over the words, and the clip embedding
for that class is the weighted sum of its frames:
    W_{c,t} = 1/N_c sum_n softmax_t(<F_t, w_{c,n}> / tau),   e_{c} = sum_t W_{c,t} F_t
so each clip gets one embedding per class, [B, C, D]. Words are the label's tokens from a text tower
(`<text tower>.tokens`), `word_mask` marks which positions are words. tau is not given; 0.01 (the
paper's temperature elsewhere) is the default."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from composer.components.registry import Kind, Params, register
from composer.tensor_types import TType, match


class WordQueryParams(Params):
    temperature: float = Field(0.01, gt=0, description="tau")


class WordQueryPooling(nn.Module):
    def __init__(self, p: WordQueryParams) -> None:
        super().__init__()
        self.tau = p.temperature

    def forward(self, frames: torch.Tensor, words: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        f = F.normalize(frames, dim=-1)  # [B, T, D]
        w = F.normalize(words.to(frames.dtype), dim=-1)  # [C, L, D]
        scores = torch.einsum("btd,cld->bclt", f, w) / self.tau
        weights = scores.softmax(dim=-1)  # over frames
        m = mask.to(weights.dtype)  # [C, L]
        weights = (weights * m[None, :, :, None]).sum(2) / m.sum(1).clamp(min=1)[None, :, None]  # [B, C, T]
        return torch.einsum("bct,btd->bcd", weights, frames)


def infer(p: WordQueryParams, ins: list[TType]) -> TType:
    b = match(ins[0], ("B", "T", "D"), what="frames")
    b = match(ins[1], ("C", "L", "D"), b, what="word embeddings")
    match(ins[2], ("C", "L"), b, what="word mask")
    return TType((b["B"], b["C"], b["D"]))


register(Kind(
    name="word_query_pooling",
    summary="([B, T, D] frames, [C, L, D] label words, [C, L] mask) -> [B, C, D]: frames weighted by "
            "how well each class's words match them",
    params=WordQueryParams, build=lambda p, info: WordQueryPooling(p), inputs=("frames", "words", "mask"),
    infer=infer, paper="Deng et al., Electronics 2024 13(16):3348, Eq. 6-7",
))
