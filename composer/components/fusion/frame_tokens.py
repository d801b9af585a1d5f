"""Frame tokens: per-frame features projected to a shared width with learnable temporal position
embeddings, [B, T, D] -> [B, T, E] (the "per-frame tokens with temporal position embeddings" of the
DINOv2 + CLIP fusion model, Pehlivan et al., Turk. J. EECS 2026; its details are not published)."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from composer.components.registry import Kind, Params, register
from composer.tensor_types import TType, match


class FrameTokensParams(Params):
    out_dim: int = Field(512, ge=1)


class FrameTokens(nn.Module):
    def __init__(self, frames: int, width: int, p: FrameTokensParams) -> None:
        super().__init__()
        self.proj = nn.Linear(width, p.out_dim)
        self.position = nn.Parameter(torch.randn(frames, p.out_dim) * 0.02)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.proj(frames) + self.position[: frames.shape[1]].to(frames.dtype)


def infer(p: FrameTokensParams, ins: list[TType]) -> TType:
    b = match(ins[0], ("B", "T", "D"), what="frames")
    return TType((b["B"], b["T"], p.out_dim))


register(Kind(
    name="frame_tokens", summary="[B, T, D] -> [B, T, E]: a linear projection plus temporal position embeddings",
    params=FrameTokensParams, build=lambda p, info: FrameTokens(info.in_types[0].shape[1], info.in_types[0].shape[2], p),
    inputs=("frames",), infer=infer, paper="Pehlivan et al., Turk. J. EECS 34(3), 2026 (design not published)",
))
