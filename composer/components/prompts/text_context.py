"""Learnable text context (CoOp, Zhou et al., IJCV 2022, Eq. 2): M vectors replace the hand-written
words of the prompt: [SOS][V1]...[VM][class words][.][EOS].

Attached at a text tower's `embed` point (token embeddings, before position embeddings): the vectors
are inserted after the start token and the sequence keeps its length by dropping M trailing padding
positions, so write the prompt template as "{}." to get CoOp's layout. With `init` words the vectors
start as those words' embeddings (CoOp's "a photo of a").
"""

from __future__ import annotations

import torch
from pydantic import Field, model_validator
from torch import nn

from composer.components.registry import Kind, Params, SiteInfo, register


class TextContextParams(Params):
    tokens: int | None = Field(None, ge=1, description="M context vectors (16 without init)")
    init: str | None = Field(None, description="words whose embeddings start the vectors, e.g. 'a video of a'")
    std: float = Field(0.02, gt=0, description="std of the random start when init is not given")

    @model_validator(mode="after")
    def _count(self):
        if self.init is None and self.tokens is None:
            self.tokens = 16
        return self


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


register(Kind(
    name="text_context",
    summary="CoOp learnable context vectors inserted after the start token of every prompt",
    params=TextContextParams, build=build,
    paper="CoOp (Zhou et al., IJCV 2022), Eq. 2",
    uses=("sequential",), points=("embed",), init_from_tower=lambda module, tower: module.init_from(tower),
))
