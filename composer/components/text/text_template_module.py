"""The modules of the `text_template` kind (declared in text_template.py, which names `build` here)."""

from __future__ import annotations

from torch import nn

from composer.components.registry import NodeInfo
from composer.components.text.text_template import TextTemplateParams


class TextTemplate(nn.Module):
    def __init__(self, template: str) -> None:
        super().__init__()
        self.template = template

    def forward(self, names: list[str]) -> list[str]:
        return [self.template.replace("{}", name) for name in names]


def build(p: TextTemplateParams, info: NodeInfo) -> TextTemplate:
    return TextTemplate(p.template)
