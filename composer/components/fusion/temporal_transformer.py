"""Temporal transformer: frame embeddings plus temporal position embeddings through a few pre-norm
transformer layers, then the mean over time (X-CLIP's multi-frame integration transformer, Ni et al.,
ECCV 2022, Eq. 4; ActionCLIP's "Transf").

Position embeddings and each layer's output projections start at zero, so at initialisation the
module is exactly temporal mean pooling and training starts from the frame-averaging baseline.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from composer.components.registry import Kind, NodeInfo, Params, register
from composer.tensor_types import ShapeError, TType, match


class TemporalTransformerParams(Params):
    layers: int = Field(1, ge=1)
    heads: int = Field(8, ge=1)
    mlp_ratio: float = Field(4.0, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)


class TemporalTransformer(nn.Module):
    def __init__(self, frames: int, width: int, p: TemporalTransformerParams) -> None:
        super().__init__()
        self.position = nn.Parameter(torch.zeros(frames, width))
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(width, p.heads, int(width * p.mlp_ratio), p.dropout, activation="gelu",
                                       batch_first=True, norm_first=True)
            for _ in range(p.layers))
        for layer in self.layers:
            nn.init.zeros_(layer.self_attn.out_proj.weight)
            nn.init.zeros_(layer.self_attn.out_proj.bias)
            nn.init.zeros_(layer.linear2.weight)
            nn.init.zeros_(layer.linear2.bias)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames + self.position[: frames.shape[1]].to(frames.dtype)
        for layer in self.layers:
            x = layer(x)
        return x.mean(dim=1)


def infer(p: TemporalTransformerParams, ins: list[TType]) -> TType:
    b = match(ins[0], ("B", "T", "D"), what="frames")
    if isinstance(b["D"], int) and b["D"] % p.heads:
        raise ShapeError(f"width {b['D']} is not divisible by heads={p.heads}")
    return TType((b["B"], b["D"]))


def build(p: TemporalTransformerParams, info: NodeInfo) -> TemporalTransformer:
    _, frames, width = info.in_types[0].shape
    return TemporalTransformer(frames, width, p)


register(Kind(
    name="temporal_transformer",
    summary="[B, T, D] -> [B, D]: temporal position embeddings, transformer layers, mean over time",
    params=TemporalTransformerParams, build=build, inputs=("frames",), infer=infer,
    paper="X-CLIP multi-frame integration transformer (Ni et al., ECCV 2022), Eq. 4",
))
