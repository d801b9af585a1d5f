"""Decoding frames with torchcodec: approximate seek mode (no full scan of the file when it opens) and
sorted, de-duplicated frame indices (torchcodec never seeks backwards then). A file that cannot be
decoded raises `BadVideo`; the dataset reports and skips it."""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

# torchcodec prefixes its errors with the C++ class and source location ("SingleStreamDecoder,
# /__w/.../SingleStreamDecoder.cpp:41, Could not open ..."): useless to a user, so they are cut off.
_SOURCE_PREFIX = re.compile(r"^.*\.(?:cpp|cc|cxx|h|hpp):\d+,\s*")


class BadVideo(Exception):
    """A video that cannot be decoded: missing, empty, truncated, or without a video stream."""


def reason(error: Exception) -> str:
    """One line saying why a decoder failed, without the decoder library's source locations."""
    text = str(error).strip()
    if not text:
        return type(error).__name__
    return _SOURCE_PREFIX.sub("", text.splitlines()[0]) or type(error).__name__


def decode_threads(workers: int) -> int:
    """FFmpeg threads per decoder: the cores this process may use, shared by the loader's workers (each
    decodes one video at a time; PyTorch limits a worker to one thread of its own)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, workers))


def open_video(path: str | Path, device: str = "cpu", threads: int = 1):
    from torchcodec.decoders import VideoDecoder  # lazy: torchcodec loads FFmpeg's libraries

    path = Path(path)
    if not path.is_file():
        raise BadVideo(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise BadVideo(f"{path}: empty file")
    try:
        decoder = VideoDecoder(str(path), seek_mode="approximate", device=device,
                               num_ffmpeg_threads=threads)
    except Exception as e:  # torchcodec raises RuntimeError/ValueError for unreadable containers
        raise BadVideo(f"{path}: {reason(e)}") from None
    if not decoder.metadata.num_frames:
        raise BadVideo(f"{path}: no frames in the video stream")
    return decoder


def frame_count(decoder) -> int:
    return int(decoder.metadata.num_frames)


def read_frames(decoder, indices: list[int], path: str | Path = "") -> torch.Tensor:
    """uint8 frames [len(indices), 3, H, W] at the given indices (any order, repeats allowed)."""
    wanted = sorted(set(indices))
    try:
        data = decoder.get_frames_at(wanted).data
    except Exception as e:
        raise BadVideo(f"{path}: some frames cannot be decoded ({reason(e)})") from None
    position = {index: i for i, index in enumerate(wanted)}
    return data[[position[i] for i in indices]]
