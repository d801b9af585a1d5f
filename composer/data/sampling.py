"""Which frames a clip is made of.

Training uses sparse segment sampling (TSN, Wang et al., ECCV 2016): the video is cut into T equal
segments and one random frame is taken from each. Testing takes the centre of each segment, and
multi-view testing shifts that position evenly within the segments for each of the K clips. A
backbone that asks for windows (TDS-CLIP: 5 consecutive frames) gets W frames centred on each sampled
frame, clamped at the video's ends. Indices are returned in time order.
"""

from __future__ import annotations

import random


def segment_indices(num_frames: int, frames: int, train: bool, rng: random.Random | None = None,
                    view: int = 0, views: int = 1) -> list[int]:
    """T frame indices in [0, num_frames): random within each segment (train) or at view k of K (test)."""
    if num_frames <= 0:
        raise ValueError("a video with no frames")
    segment = num_frames / frames
    out = []
    for t in range(frames):
        start = segment * t
        if train:
            offset = (rng or random).random() * segment
        else:
            offset = segment * (view + 0.5) / views
        out.append(min(num_frames - 1, int(start + offset)))
    return out


def windows(indices: list[int], window: int, num_frames: int) -> list[list[int]]:
    """For each index, `window` consecutive frames centred on it, clamped at the ends of the video."""
    half = window // 2
    return [[min(num_frames - 1, max(0, i + d)) for d in range(-half, window - half)] for i in indices]
