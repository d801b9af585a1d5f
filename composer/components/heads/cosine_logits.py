"""Cosine-similarity logits: scale * <v / |v|, t / |t|> between clip and class-text embeddings
(CLIP, Radford et al., ICML 2021, Fig. 3). With `learnable` the scale is exp of a trained parameter,
clamped at 100 as in CLIP.
"""

from __future__ import annotations

from pydantic import Field

from composer.components.registry import Kind, Params, register
from composer.lazy import Lazy
from composer.tensor_types import TType, match


class CosineLogitsParams(Params):
    scale: float = Field(100.0, gt=0, description="logit scale (1 / temperature)")
    learnable: bool = False


def infer(p: CosineLogitsParams, ins: list[TType]) -> TType:
    if len(ins[0].shape) == 3 and ins[0].shape[1] == "C":  # one clip embedding per class (word-query pooling)
        b = match(ins[0], ("B", "C", "D"), what="video embedding")
    else:
        b = match(ins[0], ("B", "D"), what="video embedding")
    b = match(ins[1], ("C", "D"), b, what="class embeddings")
    return TType((b["B"], b["C"]))


register(Kind(
    name="cosine_logits",
    summary="([B, D] or [B, C, D], [C, D]) -> [B, C]: scaled cosine similarity between clips and class texts",
    params=CosineLogitsParams, inputs=("video", "text"), infer=infer,
    paper="CLIP (Radford et al., ICML 2021), Fig. 3",
    build=Lazy("composer.components.heads.cosine_logits_module:build"),
    trains=lambda p: p.learnable,
))
