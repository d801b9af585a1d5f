"""FTP's integration layer: the processors' outputs concatenated, normalised and projected,
[B, D1] ... [B, Dk] -> [B, out_dim] (Lu et al., Pattern Recognition 2026). The paper does not give its
form; concatenation, LayerNorm, Linear and GELU is the default here."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from composer.components.registry import Kind, NodeInfo, Params, register
from composer.tensor_types import TType, match


class IntegrationParams(Params):
    out_dim: int = Field(512, ge=1)


class Integration(nn.Module):
    def __init__(self, width: int, p: IntegrationParams) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.proj = nn.Linear(width, p.out_dim)

    def forward(self, *features: torch.Tensor) -> torch.Tensor:
        return nn.functional.gelu(self.proj(self.norm(torch.cat(features, dim=-1))))


def infer(p: IntegrationParams, ins: list[TType]) -> TType:
    b = match(ins[0], ("B", "D0"), what="features #1")
    for i, t in enumerate(ins[1:], 2):
        match(t, ("B", f"D{i}"), {"B": b["B"]}, what=f"features #{i}")
    return TType((b["B"], p.out_dim))


def build(p: IntegrationParams, info: NodeInfo) -> Integration:
    return Integration(sum(t.shape[-1] for t in info.in_types), p)


register(Kind(
    name="integration",
    summary="[B, D1], ..., [B, Dk] -> [B, out_dim]: concatenate, LayerNorm, Linear, GELU",
    params=IntegrationParams, build=build, inputs=("features...",), infer=infer,
    paper="FTP (Lu et al., Pattern Recognition 2026), fine-tuning stage",
))
