"""The modules of the `frame_tokens` kind (declared in frame_tokens.py, which names `build` here)."""

from __future__ import annotations

import torch
from torch import nn

from composer.components.fusion.frame_tokens import FrameTokensParams
from composer.components.registry import NodeInfo


class FrameTokens(nn.Module):
    def __init__(self, frames: int, width: int, p: FrameTokensParams) -> None:
        super().__init__()
        self.proj = nn.Linear(width, p.out_dim)
        self.position = nn.Parameter(torch.randn(frames, p.out_dim) * p.position_std)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.proj(frames) + self.position[: frames.shape[1]].to(frames.dtype)


def build(p: FrameTokensParams, info: NodeInfo) -> FrameTokens:
    return FrameTokens(info.in_types[0].shape[1], info.in_types[0].shape[2], p)
