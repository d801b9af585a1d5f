"""Prompt template: class names -> sentences, e.g. "a video of a {}." (CLIP's prompt engineering,
Radford et al. 2021, Sec. 3.1.4).
"""

from __future__ import annotations

from pydantic import Field, field_validator

from composer.components.registry import Kind, Params, register
from composer.lazy import Lazy
from composer.tensor_types import TType, match


class TextTemplateParams(Params):
    template: str = Field("a video of a {}.", description="'{}' is replaced by the class name")

    @field_validator("template")
    @classmethod
    def _has_slot(cls, v: str) -> str:
        if v.count("{}") != 1:
            raise ValueError("the template needs exactly one {} where the class name goes")
        return v


def infer(p: TextTemplateParams, ins: list[TType]) -> TType:
    b = match(ins[0], ("C",), dtype="str", what="class names")
    return TType((b["C"],), "str")


register(Kind(
    name="text_template", summary="str[C] -> str[C]: put each class name into a sentence",
    params=TextTemplateParams, inputs=("names",), infer=infer,
    paper="CLIP prompt templates (Radford et al., ICML 2021), Sec. 3.1.4",
    build=Lazy("composer.components.text.text_template_module:build"),
    trains=False,
))
