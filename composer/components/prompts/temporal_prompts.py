"""Temporal prompts with a reparameterisation encoder (Deng et al., Electronics 2024, Eq. 8-14).

Attached at `blocks[...].tokens` of a per-frame visual tower, each layer l builds prompts from the
class tokens entering it (the previous layer's output) and hands them to that block's attention only:
    X_cls = P_cls(CLS_t)  for every frame t                          (Eq. 8, a Linear D -> D)
    C     = MHSA(LN(X_cls)) + X_cls   attention across the T frames   (Eq. 8)
    G     = S learnable global prompts (S = 8)                         (Sec. 3.3.1)
    I^_t  = I + [X_cls_1 .. X_cls_T]  T interchange prompts, each frame sees every frame's token (Eq. 9)
    P_t   = [c_t ; G ; I^_t]  (1 + S + T prompts per frame)            (Eq. 10-11)
    P_R   = beta(P) + P                                                 (Eq. 12, see reparameterization.py)
    [Z^, P_R] = MHSA(LN([Z, P_R])) + [Z, P_R]; the prompts are dropped before the MLP (Eq. 13-14).
Unknowns chosen here (parameters): per-layer (not shared) prompts and encoder, random init normal(0.02)
for G and I, heads of width 64 (12 at ViT-B) in the MHSA. `gated: true` attends the prompts through a zero tanh gate, so the model
starts as the frozen backbone (used in tests; the paper has no gate).
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from composer.components.prompts.reparameterization import Encoder, Reparameterization
from composer.components.registry import Kind, Params, SiteInfo, register


class TemporalPromptParams(Params):
    global_prompts: int = Field(8, ge=0, description="S")
    encoder: Encoder = Field("r2plus1d", description="beta: mlp, lstm, transformer, tada, c3d or r2plus1d")
    encoder_width: int = Field(400, ge=1, description="bottleneck width of beta")
    residual: bool = Field(True, description="P_R = beta(P) + P (false: P_R = beta(P))")
    head_width: int = Field(64, ge=1, description="width of one head of the attention across frames (12 heads at 768)")
    gated: bool = Field(False, description="attend the prompts through a zero-initialised tanh gate")


class TemporalPrompts(nn.Module):
    def __init__(self, site: SiteInfo, p: TemporalPromptParams) -> None:
        super().__init__()
        d, t = site.width, site.frames
        self.cls_proj = nn.Linear(d, d)
        self.norm = nn.LayerNorm(d)
        if d % p.head_width:
            raise ValueError(f"width {d} is not a multiple of head_width={p.head_width}")
        self.attention = nn.MultiheadAttention(d, d // p.head_width, batch_first=True)
        self.global_prompts = nn.Parameter(torch.randn(p.global_prompts, d) * 0.02)
        self.interchange = nn.Parameter(torch.randn(t, d) * 0.02)
        self.encoder = Reparameterization(d, p.encoder_width, p.encoder, p.residual)
        self.gate = nn.Parameter(torch.zeros(1)) if p.gated else None

    def forward(self, x: torch.Tensor, ctx) -> torch.Tensor:
        b, t = ctx.batch, ctx.frames
        d = x.shape[-1]
        cls = self.cls_proj(x[:, 0]).view(b, t, d)  # X_cls
        y = self.norm(cls)
        summary = self.attention(y, y, y, need_weights=False)[0] + cls  # C, [B, T, D]
        glob = self.global_prompts.to(x.dtype).expand(b, t, -1, -1)  # G, [B, T, S, D]
        inter = self.interchange[:t].to(x.dtype) + cls  # I + X_cls, [B, T, D]: the same T tokens for every frame
        prompts = torch.cat([summary.unsqueeze(2), glob, inter.unsqueeze(1).expand(b, t, t, d)], dim=2)
        return self.encoder(prompts).reshape(b * t, -1, d)


def build(p: TemporalPromptParams, site: SiteInfo) -> TemporalPrompts:
    if site.layout != "frames":
        raise ValueError("temporal_prompts needs a per-frame visual tower (CLIP, DINOv2)")
    return TemporalPrompts(site, p)


register(Kind(
    name="temporal_prompts",
    summary="per-layer prompts from the frames' class tokens (cross-frame attention, global and interchange "
            "prompts) through a reparameterisation encoder, seen by one block's attention",
    params=TemporalPromptParams, build=build,
    paper="Deng et al., Electronics 2024 13(16):3348, Eq. 8-14; Table 4 for the encoders",
    uses=("prompt",), points=("tokens",),
))
