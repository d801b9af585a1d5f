"""The modules of the `text_context` kind (declared in text_context.py, which names `build` here)."""

from __future__ import annotations

import torch
from torch import nn

from composer.components.prompts.text_context import TextContextParams
from composer.components.registry import SiteInfo


class TextContext(nn.Module):
    def __init__(self, width: int, p: TextContextParams) -> None:
        super().__init__()
        self.init_words = p.init
        count = p.tokens if p.tokens is not None else len(p.init.split())
        self.context = nn.Parameter(torch.randn(count, width) * p.std)

    def init_from(self, tower) -> None:
        """Start from the embeddings of the init words (called once the backbone exists)."""
        if self.init_words is None:
            return
        words = tower.word_embeddings(self.init_words)
        if words.shape[0] != self.context.shape[0]:
            raise ValueError(f"init '{self.init_words}' is {words.shape[0]} tokens but tokens="
                             f"{self.context.shape[0]}; leave tokens out to take it from init")
        with torch.no_grad():
            self.context.copy_(words)

    def forward(self, x: torch.Tensor, ctx) -> torch.Tensor:
        m = self.context.shape[0]
        length = x.shape[1]
        eot = ctx.state["eot"]
        if not x.is_meta and int(eot.max()) + m >= length:
            raise ValueError(f"a prompt is too long for {m} context vectors in {length} tokens")
        context = self.context.to(x.dtype).unsqueeze(0).expand(x.shape[0], -1, -1)
        ctx.state["eot"] = eot + m
        return torch.cat([x[:, :1], context, x[:, 1: length - m]], dim=1)


def build(p: TextContextParams, site: SiteInfo) -> TextContext:
    return TextContext(site.width, p)


def init_from_tower(module: TextContext, tower) -> None:
    """Start from the embeddings of the init words (called once the backbone exists)."""
    module.init_from(tower)
