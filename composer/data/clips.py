"""Clips for training and testing: decode, sample, crop, batch; bad videos are reported, not fatal.

Every random choice for a clip (its frames, its crop, its colour parameters) is drawn from a generator
seeded by (seed, epoch, index), so an epoch is the same whether a run was interrupted and resumed or not,
and whichever worker process loads it. The epoch comes with the index (the training sampler yields
(epoch, index) pairs): a loader's worker processes then live across epochs without being told the epoch.
Clips leave the workers as uint8; `on_device` turns a batch into floats on the training device and applies
the colour augmentation there (composer/data/transforms.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset

from composer.data.datasets import Item
from composer.data.sampling import segment_indices, windows
from composer.data.transforms import colour, crop, draw_colour, test_views, to_unit, train_geometry
from composer.data.video import BadVideo, decode_threads, frame_count, open_video, read_frames
from composer.errors import SpecError


@dataclass(frozen=True)
class ClipConfig:
    frames: int  # T
    size: int  # pixels of the square crop
    window: int = 1  # frames around each sampled frame (TDS-CLIP: 5)
    clips: int = 1  # test views along time
    crops: int = 1  # test views in space (1 or 3)
    flip: bool = True
    device: str = "cpu"  # where torchcodec decodes
    threads: int = 1  # FFmpeg decoding threads per video (video.decode_threads sizes them to the cores)
    colour_in_worker: bool = False  # training on the CPU: colour in the workers, in parallel (same result)
    short: str = "loop"  # a video with fewer than `frames` frames: loop its frames, or skip it (data/check.py)


def clip_configs(spec, flip: bool, device: str, workers: int, short: str,
                 colour_in_worker: bool) -> tuple[ClipConfig, ClipConfig]:
    """The clips a run reads from the spec's video input: for training (`flip` as the dataset allows; colour
    in the loader's workers when asked and there are any) and for testing (the spec's train.views). `device`:
    where torchcodec decodes; FFmpeg's threads are sized to the `workers`."""
    video = spec.video_input()
    if video is None:
        raise SpecError("the spec has no video input to train on")
    views, threads = spec.train.views, decode_threads(workers)
    train = ClipConfig(video.frames, video.size, video.window, flip=flip, device=device, threads=threads,
                       colour_in_worker=colour_in_worker and workers > 0, short=short)
    test = ClipConfig(video.frames, video.size, video.window, views.clips, views.crops, flip=False, device=device,
                      threads=threads, short=short)
    return train, test


class ClipDataset(Dataset):
    collate = staticmethod(lambda samples: collate(samples))

    def __init__(self, items: list[Item], config: ClipConfig, train: bool, seed: int = 0) -> None:
        self.items, self.config, self.train, self.seed = items, config, train, seed
        self.transform = train_geometry(config.size, config.flip) if train else None

    def __len__(self) -> int:
        return len(self.items)

    def _frames(self, decoder, count: int, rng: random.Random, view: int, path) -> torch.Tensor:
        c = self.config
        if count < c.frames:  # short-video policy "loop" (MMAction2's): indices wrap around, 0 1 2 0 1 2 ...
            indices = [t % count for t in range(c.frames)]
        else:
            indices = segment_indices(count, c.frames, self.train, rng, view, c.clips)
        flat = [i for w in windows(indices, c.window, count) for i in w] if c.window > 1 else indices
        return read_frames(decoder, flat, path)  # [T*W, 3, H, W]

    def _shape(self, video: torch.Tensor) -> torch.Tensor:
        c = self.config
        return video.view(c.frames, c.window, *video.shape[1:]) if c.window > 1 else video

    def placeholder(self) -> dict[str, Any]:
        """A black training clip of this dataset's shape: what a process whose whole batch failed to load runs,
        with zero weight, so that it still takes part in the step's collectives (composer/train/loop.py)."""
        c = self.config
        video = self._shape(torch.zeros(c.frames * c.window, 3, c.size, c.size, dtype=torch.uint8))
        return {"video": video, "label": 0, "index": -1}

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        """`key`: a clip index (epoch 0), or (epoch, index)."""
        epoch, i = key if isinstance(key, tuple) else (0, key)
        item = self.items[i]
        rng = random.Random(f"{self.seed}/{epoch}/{i}")
        extra: dict[str, Any] = {}
        try:
            decoder = open_video(item.path, self.config.device, self.config.threads)
            count = frame_count(decoder)
            if count < self.config.frames and self.config.short == "skip":
                raise BadVideo(f"{item.path}: {count} frame(s), fewer than the {self.config.frames} sampled "
                               "(--short-videos skip)")
            if self.train:
                frames = self._frames(decoder, count, rng, 0, item.path)
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(rng.getrandbits(62))
                    video = self._shape(crop(frames, self.transform))
                extra["colour"] = draw_colour(rng)
                if self.config.colour_in_worker:
                    video = colour(to_unit(video)[None], extra.pop("colour")[None])[0]
            else:
                views = [self._shape(v) for k in range(self.config.clips)
                         for v in test_views(self._frames(decoder, count, rng, k, item.path), self.config.size,
                                             self.config.crops)]
                video = torch.stack(views)  # [V, T, ...]
        except BadVideo as e:
            return {"bad": str(e), "index": i}
        return {"video": video, "label": item.label, "index": i} | extra


def once_per_video(messages: list[str]) -> list[str]:
    """The first message about each video ("path: reason"), sorted: a partly decodable video fails on other
    frames in every epoch, and is still one bad video."""
    first: dict[str, str] = {}
    for message in messages:
        first.setdefault(message.split(": ", 1)[0], message)
    return sorted(first.values())


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack the good clips; list the bad ones (they are skipped and reported by the run)."""
    good = [s for s in samples if "bad" not in s]
    batch: dict[str, Any] = {"bad": [s["bad"] for s in samples if "bad" in s],
                             "bad_index": [s["index"] for s in samples if "bad" in s]}
    if good:
        batch["video"] = torch.stack([s["video"] for s in good])
        batch["label"] = torch.tensor([s["label"] for s in good])
        batch["index"] = torch.tensor([s["index"] for s in good])
        if "colour" in good[0]:
            batch["colour"] = torch.stack([s["colour"] for s in good])
    return batch


def on_device(batch: dict[str, Any], device: torch.device | str) -> torch.Tensor:
    """A batch's uint8 clips as floats in [0, 1] on `device` (a non-blocking copy: pinned batches overlap it
    with the work already queued), coloured there, batched, when they are training clips not yet coloured
    (`colour_in_worker` sends float clips, already coloured)."""
    video = batch["video"].to(device, non_blocking=True)
    video = to_unit(video) if video.dtype == torch.uint8 else video
    return colour(video, batch["colour"]) if "colour" in batch else video
