"""The modules of the `cross_entropy` kind (declared in cross_entropy.py, which names `build` here)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from composer.components.losses.cross_entropy import CrossEntropyParams
from composer.components.losses.fp32 import at_least_fp32
from composer.components.registry import NodeInfo


class CrossEntropy(nn.Module):
    def __init__(self, p: CrossEntropyParams) -> None:
        super().__init__()
        self.smoothing = p.label_smoothing

    def forward(self, logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(at_least_fp32(logits), label, label_smoothing=self.smoothing)


def build(p: CrossEntropyParams, info: NodeInfo) -> CrossEntropy:
    return CrossEntropy(p)
