"""Texts per class from a JSON file: descriptions (MSTA), a label dictionary (Chinese labels), the
answers to FTP's four prompts. The file maps each class name to a string, a list of strings, or an
object whose `field` holds them:
    {"apply eye makeup": {"spatial": ["...", "..."], "temporal": ["...", "..."]}, ...}
With `per_class: N` the first N strings of each class are taken (str[C, N]); without it, one string
(str[C]). `file` is relative to the spec's folder, or `@name` for a file the dataset provides (the
demo ships descriptions, answers and a Chinese dictionary). Classes missing from the file are
reported by name before anything runs on them."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field
from torch import nn

from composer.components.registry import Kind, Params, register
from composer.errors import DataError
from composer.tensor_types import TType, match


class ClassTextsParams(Params):
    file: str = Field(description="JSON file: class name -> text(s); relative to the spec, or @name from the dataset")
    field: str | None = Field(None, description="key inside each class's entry (e.g. spatial, temporal, category)")
    per_class: int | None = Field(None, ge=1, description="take N texts per class (output str[C, N])")


class ClassTexts(nn.Module):
    def __init__(self, p: ClassTextsParams, base_dir: Path) -> None:
        super().__init__()
        self.p, self.base_dir = p, base_dir
        self.dataset_files: dict[str, Path] = {}
        self._table: dict | None = None

    def bind_dataset(self, files: dict[str, Path]) -> None:
        """Files the dataset provides, for `file: "@name"`."""
        self.dataset_files = dict(files)
        self._table = None

    def path(self) -> Path:
        f = self.p.file
        if f.startswith("@"):
            if f[1:] not in self.dataset_files:
                raise DataError(f"class texts '{f}' come from the dataset, which provides no '{f[1:]}' file "
                                f"(it provides: {', '.join(self.dataset_files) or 'none'})")
            return self.dataset_files[f[1:]]
        return (self.base_dir / f).resolve()

    def table(self) -> dict:
        if self._table is None:
            path = self.path()
            try:
                self._table = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as e:
                raise DataError(f"cannot read class texts from {path}: {e}") from None
        return self._table

    def _texts(self, entry, name: str) -> list[str] | str:
        if self.p.field is not None:
            if not isinstance(entry, dict) or self.p.field not in entry:
                raise DataError(f"{self.path()}: class '{name}' has no '{self.p.field}' entry")
            entry = entry[self.p.field]
        if self.p.per_class is None:
            return entry if isinstance(entry, str) else entry[0]
        texts = [entry] if isinstance(entry, str) else list(entry)
        if len(texts) < self.p.per_class:
            raise DataError(f"{self.path()}: class '{name}' has {len(texts)} texts, {self.p.per_class} needed")
        return texts[: self.p.per_class]

    def forward(self, names: list[str]) -> list:
        table = self.table()
        missing = [n for n in names if n not in table]
        if missing:
            raise DataError(f"{self.path()} has no entry for {len(missing)} class(es): {', '.join(missing[:10])}"
                            + (" ..." if len(missing) > 10 else ""))
        return [self._texts(table[n], n) for n in names]


def infer(p: ClassTextsParams, ins: list[TType]) -> TType:
    b = match(ins[0], ("C",), dtype="str", what="class names")
    return TType((b["C"],) + ((p.per_class,) if p.per_class else ()), "str")


register(Kind(
    name="class_texts",
    summary="str[C] class names -> str[C] or str[C, N] texts looked up in a JSON file (descriptions, "
            "label dictionaries, prompt answers)",
    params=ClassTextsParams, build=lambda p, info: ClassTexts(p, info.base_dir), inputs=("names",), infer=infer,
    binds_dataset=True,
    paper="descriptions: MSTA (Chen et al., CVPR 2025), Sec. 3.3; label dictionary: Deng et al. 2024, Sec. 3.4",
))
