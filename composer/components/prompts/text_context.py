"""Learnable text context (CoOp, Zhou et al., IJCV 2022, Eq. 2): M vectors replace the hand-written
words of the prompt: [SOS][V1]...[VM][class words][.][EOS].

Attached at a text tower's `embed` point (token embeddings, before position embeddings): the vectors
are inserted after the start token and the sequence keeps its length by dropping M trailing padding
positions, so write the prompt template as "{}." to get CoOp's layout. With `init` words the vectors
start as those words' embeddings (CoOp's "a photo of a").
"""

from __future__ import annotations

from pydantic import Field, model_validator

from composer.components.registry import Kind, Params, register
from composer.lazy import Lazy


class TextContextParams(Params):
    tokens: int | None = Field(None, ge=1, description="M context vectors (16 without init)")
    init: str | None = Field(None, description="words whose embeddings start the vectors, e.g. 'a video of a'")
    std: float = Field(0.02, gt=0, description="std of the random start when init is not given")

    @model_validator(mode="after")
    def _count(self):
        if self.init is None and self.tokens is None:
            self.tokens = 16
        return self


register(Kind(
    name="text_context",
    summary="CoOp learnable context vectors inserted after the start token of every prompt",
    params=TextContextParams,
    paper="CoOp (Zhou et al., IJCV 2022), Eq. 2",
    uses=("sequential",), points=("embed",),
    build=Lazy("composer.components.prompts.text_context_module:build"),
    init_from_tower=Lazy("composer.components.prompts.text_context_module:init_from_tower"),
    trains=True,
    needs_tower=lambda p: p.init is not None,  # the tower's tokenizer counts the init words
))
