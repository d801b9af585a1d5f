"""Texts per class from a JSON file: descriptions (MSTA), a label dictionary (Chinese labels), the
answers to FTP's four prompts. The file maps each class name to a string, a list of strings, or an
object whose `field` holds them:
    {"apply eye makeup": {"spatial": ["...", "..."], "temporal": ["...", "..."]}, ...}
With `per_class: N` the first N strings of each class are taken (str[C, N]); without it, one string
(str[C]). `file` is relative to the spec's folder, or `@name` for a file the dataset provides (the
demo ships descriptions, answers and a Chinese dictionary). Classes missing from the file are
reported by name before anything runs on them.
"""

from __future__ import annotations

from pydantic import Field

from composer.components.registry import Kind, Params, register
from composer.lazy import Lazy
from composer.tensor_types import TType, match


class ClassTextsParams(Params):
    file: str = Field(description="JSON file: class name -> text(s); relative to the spec, or @name from the dataset")
    field: str | None = Field(None, description="key inside each class's entry (e.g. spatial, temporal, category)")
    per_class: int | None = Field(None, ge=1, description="take N texts per class (output str[C, N])")


def infer(p: ClassTextsParams, ins: list[TType]) -> TType:
    b = match(ins[0], ("C",), dtype="str", what="class names")
    return TType((b["C"],) + ((p.per_class,) if p.per_class else ()), "str")


register(Kind(
    name="class_texts",
    summary="str[C] class names -> str[C] or str[C, N] texts looked up in a JSON file (descriptions, "
            "label dictionaries, prompt answers)",
    params=ClassTextsParams, inputs=("names",), infer=infer,
    binds_dataset=True,
    paper="descriptions: MSTA (Chen et al., CVPR 2025), Sec. 3.3; label dictionary: Deng et al. 2024, Sec. 3.4",
    build=Lazy("composer.components.text.class_texts_module:build"),
    trains=False,
))
