"""Frame tokens: per-frame features projected to a shared width with learnable temporal position
embeddings, [B, T, D] -> [B, T, E] (the "per-frame tokens with temporal position embeddings" of the
DINOv2 + CLIP fusion model, Pehlivan et al., Turk. J. EECS 2026; its details are not published).
"""

from __future__ import annotations

from pydantic import Field

from composer.components.registry import Kind, Params, register
from composer.lazy import Lazy
from composer.tensor_types import TType, match


class FrameTokensParams(Params):
    out_dim: int = Field(512, ge=1)


def infer(p: FrameTokensParams, ins: list[TType]) -> TType:
    b = match(ins[0], ("B", "T", "D"), what="frames")
    return TType((b["B"], b["T"], p.out_dim))


register(Kind(
    name="frame_tokens", summary="[B, T, D] -> [B, T, E]: a linear projection plus temporal position embeddings",
    params=FrameTokensParams,
    inputs=("frames",), infer=infer, paper="Pehlivan et al., Turk. J. EECS 34(3), 2026 (design not published)",
    build=Lazy("composer.components.fusion.frame_tokens_module:build"),
    trains=True,
))
