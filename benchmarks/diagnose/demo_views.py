"""Shared by the diagnosis scripts: a model's outputs on demo clips, clean or as the run augments them."""

from __future__ import annotations

import math
from typing import Callable

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


def train_steps(forward: Callable[[torch.Tensor], torch.Tensor], draws: list[tuple[torch.Tensor, torch.Tensor]],
                optimizer: torch.optim.Optimizer, epochs: int, warm: int, seed: int) -> list[float]:
    """A stage's schedule on cached inputs: 24 steps of batch 8 an epoch (the demo's 192 training clips), `warm`
    warm-up steps, then cosine; epoch e reads draws[e % len(draws)] in a seeded order. Each step's loss."""
    steps = epochs * 24
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: (s + 1) / warm if s < warm else
                                                 0.5 * (1 + math.cos(math.pi * (s - warm) / (steps - warm))))
    generator, losses = torch.Generator().manual_seed(seed), []
    for epoch in range(epochs):
        x, y = draws[epoch % len(draws)]
        order = torch.randperm(len(y), generator=generator)
        for i in range(24):
            pick = order[i * 8:(i + 1) * 8]
            loss = torch.nn.functional.cross_entropy(forward(x[pick]), y[pick])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
    return losses
