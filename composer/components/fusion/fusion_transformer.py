"""A small fusion transformer over visual and text tokens (Pehlivan et al., Turk. J. EECS 2026, the
DINOv2 + CLIP model; the paper gives no layout). Here: a learnable clip token and the T frame tokens
attend to themselves and to the C class-text tokens (keys and values only), for a few pre-norm layers;
the clip token's output is the clip embedding [B, E], compared with the class texts by cosine logits.
Output projections start at zero, so training starts from the frame mean (no text mixed in).
"""

from __future__ import annotations

from pydantic import Field

from composer.components.registry import Kind, Params, register
from composer.lazy import Lazy
from composer.tensor_types import ShapeError, TType, match


class FusionParams(Params):
    layers: int = Field(2, ge=1)
    heads: int = Field(8, ge=1)
    mlp_ratio: float = Field(4.0, gt=0)


def infer(p: FusionParams, ins: list[TType]) -> TType:
    b = match(ins[0], ("B", "T", "D"), what="frame tokens")
    b = match(ins[1], ("C", "D"), b, what="class-text tokens")
    if isinstance(b["D"], int) and b["D"] % p.heads:
        raise ShapeError(f"width {b['D']} is not divisible by heads={p.heads}")
    return TType((b["B"], b["D"]))


register(Kind(
    name="fusion_transformer",
    summary="([B, T, E] frame tokens, [C, E] class texts) -> [B, E]: a clip token attending to frames and texts",
    params=FusionParams,
    inputs=("frames", "text"), infer=infer, paper="Pehlivan et al., Turk. J. EECS 34(3), 2026 (design not published)",
    build=Lazy("composer.components.fusion.fusion_transformer_module:build"),
    trains=True,
))
