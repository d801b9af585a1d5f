"""Augmentation and test views with torchvision's v2 transforms, on whole clips (the same random crop,
flip and colour change for every frame of a clip).

Training: RandomResizedCrop, horizontal flip (off for datasets whose classes are left/right, such as
Something-Something and the demo), ColorJitter with probability 0.8 and greyscale with 0.2 (MSTA's
recipe). Testing: resize the shorter side, then the centre crop, or three crops along the longer side.
Normalisation is not done here: each backbone normalises with its own statistics (CLIP's or
ImageNet's), so one clip can feed two backbones.
"""

from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2


def train_transform(size: int, flip: bool) -> v2.Compose:
    steps = [v2.RandomResizedCrop(size, scale=(0.25, 1.0), antialias=True)]
    if flip:
        steps.append(v2.RandomHorizontalFlip(0.5))
    steps += [v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8), v2.RandomGrayscale(p=0.2)]
    return v2.Compose(steps)


def augment(frames: torch.Tensor, transform: v2.Compose) -> torch.Tensor:
    """uint8 [T, 3, H, W] -> float [T, 3, S, S] in [0, 1], one set of random parameters for the clip."""
    video = transform(tv_tensors.Video(frames))
    return video.as_subclass(torch.Tensor).float() / 255.0


def test_views(frames: torch.Tensor, size: int, crops: int) -> list[torch.Tensor]:
    """uint8 [T, 3, H, W] -> `crops` float views [T, 3, S, S]: the centre, or three along the longer side."""
    video = v2.functional.resize(frames, size, antialias=True)
    h, w = video.shape[-2:]
    if crops == 1:
        offsets = [((h - size) // 2, (w - size) // 2)]
    elif crops == 3:
        if w >= h:
            offsets = [((h - size) // 2, x) for x in (0, (w - size) // 2, w - size)]
        else:
            offsets = [(y, (w - size) // 2) for y in (0, (h - size) // 2, h - size)]
    else:
        raise ValueError("test views use 1 or 3 crops")
    return [video[..., y: y + size, x: x + size].float() / 255.0 for y, x in offsets]
