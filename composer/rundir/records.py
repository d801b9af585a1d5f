"""The files of a run directory that describe results: JSON written atomically, the confusion matrices, bad videos."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from composer.files import atomic_write


def write_text(path: Path, text: str) -> None:
    """Write atomically (the file mode is the run directory's: composer/files.py)."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False))


def confusion(scores: torch.Tensor, labels: torch.Tensor, classes: int) -> list[list[int]]:
    """Counts with rows = true class and columns = predicted (highest-scoring) class."""
    matrix = torch.zeros(classes, classes, dtype=torch.long)
    if len(labels):
        matrix.index_put_((labels, scores.argmax(1)), torch.ones_like(labels), accumulate=True)
    return matrix.tolist()


def write_confusion(path: Path, parts: dict[str, tuple[list[str], torch.Tensor, torch.Tensor]]) -> None:
    """confusion.json: {"parts": {part: {"classes": [...], "matrix": rows = true, columns = predicted}}}.
    Each part names its own classes: base-to-novel and zero-shot parts are tested on other classes than
    the training ones."""
    write_json(path, {"parts": {name: {"classes": list(classes), "matrix": confusion(scores, labels, len(classes))}
                                for name, (classes, scores, labels) in parts.items()}})


def write_bad_videos(path: Path, bad: list[str]) -> None:
    """bad_videos.txt: one path per line, empty when every video decoded."""
    write_text(path, "".join(f"{b}\n" for b in sorted(set(bad))))
