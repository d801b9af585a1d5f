"""Temporal transformer: frame embeddings plus temporal position embeddings through a few pre-norm
transformer layers, then the mean over time (X-CLIP's multi-frame integration transformer, Ni et al.,
ECCV 2022, Eq. 4; ActionCLIP's "Transf").

Position embeddings and each layer's output projections start at zero, so at initialisation the
module is exactly temporal mean pooling and training starts from the frame-averaging baseline.
"""

from __future__ import annotations

from pydantic import Field

from composer.components.registry import Kind, Params, register
from composer.lazy import Lazy
from composer.tensor_types import ShapeError, TType, match


class TemporalTransformerParams(Params):
    layers: int = Field(1, ge=1)
    heads: int = Field(8, ge=1)
    mlp_ratio: float = Field(4.0, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)


def infer(p: TemporalTransformerParams, ins: list[TType]) -> TType:
    b = match(ins[0], ("B", "T", "D"), what="frames")
    if isinstance(b["D"], int) and b["D"] % p.heads:
        raise ShapeError(f"width {b['D']} is not divisible by heads={p.heads}")
    return TType((b["B"], b["D"]))


register(Kind(
    name="temporal_transformer",
    summary="[B, T, D] -> [B, D]: temporal position embeddings, transformer layers, mean over time",
    params=TemporalTransformerParams, inputs=("frames",), infer=infer,
    paper="X-CLIP multi-frame integration transformer (Ni et al., ECCV 2022), Eq. 4",
    build=Lazy("composer.components.fusion.temporal_transformer_module:build"),
    trains=True,
))
