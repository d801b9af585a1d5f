"""Linear classifier: [..., D] -> [..., classes] (the linear probe of CLIP, Radford et al. 2021, Sec. 3.2)."""

from __future__ import annotations

from pydantic import Field
from torch import nn

from composer.components.registry import Kind, NodeInfo, Params, register
from composer.tensor_types import TType, match


class LinearHeadParams(Params):
    classes: int | None = Field(None, ge=1, description="outputs; default: the dataset's class count C")
    dropout: float = Field(0.0, ge=0, lt=1)
    bias: bool = True


class LinearHead(nn.Module):
    def __init__(self, width: int, classes: int, p: LinearHeadParams) -> None:
        super().__init__()
        self.drop = nn.Dropout(p.dropout)
        self.fc = nn.Linear(width, classes, bias=p.bias)

    def forward(self, x):
        return self.fc(self.drop(x))


def infer(p: LinearHeadParams, ins: list[TType]) -> TType:
    match(ins[0], ("...", "D"), what="features")
    return TType(ins[0].shape[:-1] + (p.classes or "C",))


def build(p: LinearHeadParams, info: NodeInfo) -> LinearHead:
    return LinearHead(info.in_types[0].shape[-1], p.classes or info.num_classes, p)


register(Kind(
    name="linear_head", summary="[..., D] -> [..., classes]: dropout and a linear layer",
    params=LinearHeadParams, build=build, inputs=("features",), infer=infer, fixed_classes=True,
    paper="linear probe, CLIP (Radford et al., ICML 2021), Sec. 3.2",
))
