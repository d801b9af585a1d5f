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

from typing import Literal

from pydantic import Field

from composer.components.registry import Kind, Params, SiteInfo, register
from composer.lazy import Lazy

Encoder = Literal["mlp", "lstm", "transformer", "tada", "c3d", "r2plus1d"]  # beta (reparameterization.py)


class TemporalPromptParams(Params):
    global_prompts: int = Field(8, ge=0, description="S")
    encoder: Encoder = Field("r2plus1d", description="beta: mlp, lstm, transformer, tada, c3d or r2plus1d")
    encoder_width: int = Field(400, ge=1, description="bottleneck width of beta")
    residual: bool = Field(True, description="P_R = beta(P) + P (false: P_R = beta(P))")
    head_width: int = Field(64, ge=1, description="width of one head of the attention across frames (12 heads at 768)")
    gated: bool = Field(False, description="attend the prompts through a zero-initialised tanh gate")


def check(p: TemporalPromptParams, site: SiteInfo) -> None:
    if site.layout != "frames":
        raise ValueError("temporal_prompts needs a per-frame visual tower (CLIP, DINOv2)")
    if site.width % p.head_width:
        raise ValueError(f"width {site.width} is not a multiple of head_width={p.head_width}")


register(Kind(
    name="temporal_prompts",
    summary="per-layer prompts from the frames' class tokens (cross-frame attention, global and interchange "
            "prompts) through a reparameterisation encoder, seen by one block's attention",
    params=TemporalPromptParams,
    paper="Deng et al., Electronics 2024 13(16):3348, Eq. 8-14; Table 4 for the encoders",
    uses=("prompt",), points=("tokens",),
    build=Lazy("composer.components.prompts.temporal_prompts_module:build"),
    check=check,
    trains=True,
))
