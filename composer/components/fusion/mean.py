"""Mean over one axis, e.g. the N descriptions per class ([C, N, D] -> [C, D], MSTA's frozen branch).
"""

from __future__ import annotations

from pydantic import Field

from composer.components.registry import Kind, Params, register
from composer.lazy import Lazy
from composer.tensor_types import ShapeError, TType


class MeanParams(Params):
    axis: int = Field(1, description="the axis to average over (0 is the first)")


def infer(p: MeanParams, ins: list[TType]) -> TType:
    t = ins[0]
    if t.dtype != "float" or not -len(t.shape) <= p.axis < len(t.shape) or len(t.shape) < 2:
        raise ShapeError(f"cannot average axis {p.axis} of {t}")
    shape = list(t.shape)
    del shape[p.axis]
    return TType(tuple(shape))


register(Kind(
    name="mean", summary="average a tensor over one axis",
    params=MeanParams, inputs=("x",), infer=infer,
    build=Lazy("composer.components.fusion.mean_module:build"),
    trains=False,
))
