"""Linear classifier: [..., D] -> [..., classes] (the linear probe of CLIP, Radford et al. 2021, Sec. 3.2).
"""

from __future__ import annotations

from pydantic import Field

from composer.components.registry import Kind, Params, register
from composer.lazy import Lazy
from composer.tensor_types import TType, match


class LinearHeadParams(Params):
    classes: int | None = Field(None, ge=1, description="outputs; default: the dataset's class count C")
    dropout: float = Field(0.0, ge=0, lt=1)
    bias: bool = True


def infer(p: LinearHeadParams, ins: list[TType]) -> TType:
    match(ins[0], ("...", "D"), what="features")
    return TType(ins[0].shape[:-1] + (p.classes or "C",))


register(Kind(
    name="linear_head", summary="[..., D] -> [..., classes]: dropout and a linear layer",
    params=LinearHeadParams, inputs=("features",), infer=infer, fixed_classes=True,
    paper="linear probe, CLIP (Radford et al., ICML 2021), Sec. 3.2",
    build=Lazy("composer.components.heads.linear_head_module:build"),
    trains=True,
))
