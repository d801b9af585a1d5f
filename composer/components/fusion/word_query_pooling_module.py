"""The modules of the `word_query_pooling` kind (declared in word_query_pooling.py, which names `build` here)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from composer.components.fusion.word_query_pooling import WordQueryParams
from composer.components.registry import NodeInfo


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


def build(p: WordQueryParams, info: NodeInfo) -> WordQueryPooling:
    return WordQueryPooling(p)
