"""Word-query frame pooling (Deng et al., Electronics 2024, Eq. 6-7): each word of a class label scores
every frame, the scores are softmaxed over frames and averaged over the words, and the clip embedding
for that class is the weighted sum of its frames:
    W_{c,t} = 1/N_c sum_n softmax_t(<F_t, w_{c,n}> / tau),   e_{c} = sum_t W_{c,t} F_t
so each clip gets one embedding per class, [B, C, D]. Words are the label's tokens from a text tower
(`<text tower>.tokens`), `word_mask` marks which positions are words. tau is not given; 0.01 (the
paper's temperature elsewhere) is the default.
"""

from __future__ import annotations

from pydantic import Field

from composer.components.registry import Kind, Params, register
from composer.lazy import Lazy
from composer.tensor_types import TType, match


class WordQueryParams(Params):
    temperature: float = Field(0.01, gt=0, description="tau")


def infer(p: WordQueryParams, ins: list[TType]) -> TType:
    b = match(ins[0], ("B", "T", "D"), what="frames")
    b = match(ins[1], ("C", "L", "D"), b, what="word embeddings")
    match(ins[2], ("C", "L"), b, what="word mask")
    return TType((b["B"], b["C"], b["D"]))


register(Kind(
    name="word_query_pooling",
    summary="([B, T, D] frames, [C, L, D] label words, [C, L] mask) -> [B, C, D]: frames weighted by "
            "how well each class's words match them",
    params=WordQueryParams, inputs=("frames", "words", "mask"),
    infer=infer, paper="Deng et al., Electronics 2024 13(16):3348, Eq. 6-7",
    build=Lazy("composer.components.fusion.word_query_pooling_module:build"),
    trains=False,
))
