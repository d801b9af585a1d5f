"""Shared by the diagnosis scripts: a model's outputs on demo clips, clean or as the run augments them."""

from __future__ import annotations

import torch

from composer.data.clips import ClipConfig, ClipDataset, collate, on_device


def outputs_on(model, index, items, frames: int, names: list[str], train: bool = False,
               seed: int = 0) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """`names` of the model's outputs for every clip of `items` (64 px; one clean view, or with `train` the
    run's own crop and colour draws, seeded), concatenated over batches of 16, and the labels."""
    data = ClipDataset(items, ClipConfig(frames=frames, size=64, flip=False), train=train, seed=seed)
    out: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    labels = []
    with torch.no_grad():
        for start in range(0, len(items), 16):
            batch = collate([data[i] for i in range(start, min(start + 16, len(items)))])
            video = on_device(batch, "cpu")
            video = video[:, 0] if video.dim() == 6 else video  # test views: the single one
            o = model({"video": video, "label": batch["label"], "class_names": index.classes}, outputs=names)
            for n in names:
                out[n].append(o[n])
            labels.append(batch["label"])
    return {n: torch.cat(v) for n, v in out.items()}, torch.cat(labels)
