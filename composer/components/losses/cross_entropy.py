"""Cross-entropy over logits (with label smoothing, Szegedy et al. 2016, Sec. 7)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from composer.components.registry import Kind, Params, register
from composer.tensor_types import SCALAR, TType, match
from composer.components.losses import at_least_fp32


class CrossEntropyParams(Params):
    label_smoothing: float = Field(0.0, ge=0, lt=1)


class CrossEntropy(nn.Module):
    def __init__(self, p: CrossEntropyParams) -> None:
        super().__init__()
        self.smoothing = p.label_smoothing

    def forward(self, logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(at_least_fp32(logits), label, label_smoothing=self.smoothing)


def infer(p: CrossEntropyParams, ins: list[TType]) -> TType:
    b = match(ins[0], ("B", "C"), what="logits")
    match(ins[1], ("B",), b, dtype="long", what="label")
    return SCALAR


register(Kind(
    name="cross_entropy", summary="([B, C], long[B]) -> loss: cross-entropy with optional label smoothing",
    params=CrossEntropyParams, build=lambda p, info: CrossEntropy(p), inputs=("logits", "label"), infer=infer,
    is_loss=True, paper="label smoothing: Szegedy et al., CVPR 2016, Sec. 7",
))
