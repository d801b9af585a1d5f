"""Cross-entropy over logits (with label smoothing, Szegedy et al. 2016, Sec. 7).
"""

from __future__ import annotations

from pydantic import Field

from composer.components.registry import Kind, Params, register
from composer.lazy import Lazy
from composer.tensor_types import SCALAR, TType, match


class CrossEntropyParams(Params):
    label_smoothing: float = Field(0.0, ge=0, lt=1)


def infer(p: CrossEntropyParams, ins: list[TType]) -> TType:
    b = match(ins[0], ("B", "C"), what="logits")
    match(ins[1], ("B",), b, dtype="long", what="label")
    return SCALAR


register(Kind(
    name="cross_entropy", summary="([B, C], long[B]) -> loss: cross-entropy with optional label smoothing",
    params=CrossEntropyParams, inputs=("logits", "label"), infer=infer,
    is_loss=True, paper="label smoothing: Szegedy et al., CVPR 2016, Sec. 7",
    build=Lazy("composer.components.losses.cross_entropy_module:build"),
    trains=False,
))
