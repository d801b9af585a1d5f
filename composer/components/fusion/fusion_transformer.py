"""A small fusion transformer over visual and text tokens (Pehlivan et al., Turk. J. EECS 2026, the
DINOv2 + CLIP model; the paper gives no layout). Here: a learnable clip token and the T frame tokens
attend to themselves and to the C class-text tokens (keys and values only), for a few pre-norm layers;
the clip token's output is the clip embedding [B, E], compared with the class texts by cosine logits.
Output projections start at zero, so training starts from the frame mean (no text mixed in)."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from composer.components.registry import Kind, Params, register
from composer.tensor_types import ShapeError, TType, match


class FusionParams(Params):
    layers: int = Field(2, ge=1)
    heads: int = Field(8, ge=1)
    mlp_ratio: float = Field(4.0, gt=0)


class FusionLayer(nn.Module):
    def __init__(self, width: int, p: FusionParams) -> None:
        super().__init__()
        self.norm_q, self.norm_kv = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attention = nn.MultiheadAttention(width, p.heads, batch_first=True)
        self.norm_mlp = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, int(width * p.mlp_ratio)), nn.GELU(),
                                 nn.Linear(int(width * p.mlp_ratio), width))
        nn.init.zeros_(self.attention.out_proj.weight)
        nn.init.zeros_(self.attention.out_proj.bias)
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.zeros_(self.mlp[2].bias)

    def forward(self, x: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        q = self.norm_q(x)
        kv = torch.cat([q, self.norm_kv(text)], dim=1)
        x = x + self.attention(q, kv, kv, need_weights=False)[0]
        return x + self.mlp(self.norm_mlp(x))


class FusionTransformer(nn.Module):
    def __init__(self, width: int, p: FusionParams) -> None:
        super().__init__()
        self.token = nn.Parameter(torch.zeros(1, 1, width))
        self.layers = nn.ModuleList(FusionLayer(width, p) for _ in range(p.layers))

    def forward(self, frames: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        b = frames.shape[0]
        x = torch.cat([frames.mean(1, keepdim=True) + self.token.to(frames.dtype), frames], dim=1)
        context = text.to(frames.dtype).unsqueeze(0).expand(b, -1, -1)
        for layer in self.layers:
            x = layer(x, context)
        return x[:, 0]


def infer(p: FusionParams, ins: list[TType]) -> TType:
    b = match(ins[0], ("B", "T", "D"), what="frame tokens")
    b = match(ins[1], ("C", "D"), b, what="class-text tokens")
    if isinstance(b["D"], int) and b["D"] % p.heads:
        raise ShapeError(f"width {b['D']} is not divisible by heads={p.heads}")
    return TType((b["B"], b["D"]))


register(Kind(
    name="fusion_transformer",
    summary="([B, T, E] frame tokens, [C, E] class texts) -> [B, E]: a clip token attending to frames and texts",
    params=FusionParams, build=lambda p, info: FusionTransformer(info.in_types[0].shape[-1], p),
    inputs=("frames", "text"), infer=infer, paper="Pehlivan et al., Turk. J. EECS 34(3), 2026 (design not published)",
))
