"""The modules of the `linear_head` kind (declared in linear_head.py, which names `build` here)."""

from __future__ import annotations

from torch import nn

from composer.components.heads.linear_head import LinearHeadParams
from composer.components.registry import NodeInfo


class LinearHead(nn.Module):
    def __init__(self, width: int, classes: int, p: LinearHeadParams) -> None:
        super().__init__()
        self.drop = nn.Dropout(p.dropout)
        self.fc = nn.Linear(width, classes, bias=p.bias)

    def forward(self, x):
        return self.fc(self.drop(x))


def build(p: LinearHeadParams, info: NodeInfo) -> LinearHead:
    return LinearHead(info.in_types[0].shape[-1], p.classes or info.num_classes, p)
