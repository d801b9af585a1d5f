"""The modules of the `class_texts` kind (declared in class_texts.py, which names `build` here)."""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from composer.components.registry import NodeInfo
from composer.components.text.class_texts import ClassTextsParams
from composer.errors import DataError


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


def build(p: ClassTextsParams, info: NodeInfo) -> ClassTexts:
    return ClassTexts(p, info.base_dir)
