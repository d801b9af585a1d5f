"""Score fusion at inference: S = lambda * S_a + (1 - lambda) * S_b (Deng et al., Electronics 2024,
Sec. 3.5: English and Chinese similarity scores). lambda is not given in the paper; 0.5 by default.
"""

from __future__ import annotations

from pydantic import Field

from composer.components.registry import Kind, Params, register
from composer.lazy import Lazy
from composer.tensor_types import TType, match


class ScoreFusionParams(Params):
    weight: float = Field(0.5, ge=0, le=1, description="lambda, the weight of the first scores")


def infer(p: ScoreFusionParams, ins: list[TType]) -> TType:
    b = match(ins[0], ("B", "C"), what="first scores")
    match(ins[1], ("B", "C"), b, what="second scores")
    return ins[0]


register(Kind(
    name="score_fusion", summary="([B, C], [B, C]) -> [B, C]: lambda * a + (1 - lambda) * b",
    params=ScoreFusionParams, inputs=("a", "b"), infer=infer,
    paper="Deng et al., Electronics 2024 13(16):3348, Sec. 3.5",
    build=Lazy("composer.components.heads.score_fusion_module:build"),
    trains=False,
))
