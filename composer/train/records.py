"""The files of a run directory that describe results: JSON written atomically, the confusion matrices, bad videos."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from composer.build.checkpoint import atomic_write


def write_json(path: Path, data: Any) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2, ensure_ascii=False)))


def confusion(scores: torch.Tensor, labels: torch.Tensor, classes: int) -> list[list[int]]:
    """Counts with rows = true class and columns = predicted (highest-scoring) class."""
    matrix = torch.zeros(classes, classes, dtype=torch.long)
    if len(labels):
        matrix.index_put_((labels, scores.argmax(1)), torch.ones_like(labels), accumulate=True)
    return matrix.tolist()


def write_confusion(path: Path, train_classes: list[str], parts: dict[str, tuple[list[str], torch.Tensor,
                                                                                    torch.Tensor]]) -> None:
    """confusion.json: {"classes": the training classes, "parts": {part: matrix}}; a part tested on other
    classes (base-to-novel, zero-shot) also names its own under "part_classes"."""
    data: dict[str, Any] = {"classes": list(train_classes), "parts": {}}
    for name, (classes, scores, labels) in parts.items():
        data["parts"][name] = confusion(scores, labels, len(classes))
        if list(classes) != list(train_classes):
            data.setdefault("part_classes", {})[name] = list(classes)
    write_json(path, data)


def write_bad_videos(path: Path, bad: list[str]) -> None:
    """bad_videos.txt: one path per line, empty when every video decoded."""
    atomic_write(path, lambda tmp: Path(tmp).write_text("".join(f"{b}\n" for b in sorted(set(bad))),
                                                        encoding="utf-8"))
