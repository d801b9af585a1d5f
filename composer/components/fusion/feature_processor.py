"""FTP's feature processor (Lu, Jian, Salah and Poppe, Pattern Recognition 2026, "Four-Tiered Prompts";
arXiv 2403.16128): a head over a video ViT's token map that is aligned, in a pre-training stage, with
the text embedding of one VLM prompt's answers (category, components, description or context).
The paper describes processors only as "projection layers, pooling blocks"; this one is attention
pooling (one learnable query, 8 heads) followed by a two-layer MLP to the text space (512).
"""

from __future__ import annotations

from pydantic import Field

from composer.components.registry import Kind, Params, register
from composer.lazy import Lazy
from composer.tensor_types import ShapeError, TType, match


class FeatureProcessorParams(Params):
    out_dim: int = Field(512, ge=1, description="the text embedding width it aligns to")
    heads: int = Field(8, ge=1)
    hidden: int | None = Field(None, ge=1, description="MLP hidden width (default: the input width)")


def infer(p: FeatureProcessorParams, ins: list[TType]) -> TType:
    b = match(ins[0], ("B", "N", "D"), what="token map")
    if isinstance(b["D"], int) and b["D"] % p.heads:
        raise ShapeError(f"width {b['D']} is not divisible by heads={p.heads}")
    return TType((b["B"], p.out_dim))


register(Kind(
    name="feature_processor",
    summary="[B, N, D] tokens -> [B, out_dim]: attention pooling with one learnable query, then an MLP",
    params=FeatureProcessorParams,
    inputs=("tokens",), infer=infer,
    paper="FTP (Lu et al., Pattern Recognition 2026; arXiv 2403.16128), Sec. 3",
    build=Lazy("composer.components.fusion.feature_processor_module:build"),
    trains=True,
))
