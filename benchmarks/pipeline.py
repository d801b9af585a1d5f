"""8. The training input pipeline, before and after issue 12, in one run.

*before*: what composer did until issue 12. A new DataLoader (new worker processes) every epoch; the
worker crops, flips, colour-jitters and greys the clip on the CPU with torchvision's v2 transforms and sends
float32 [0, 1] clips through shared memory; no pinned memory.
*after*: one DataLoader for all epochs (persistent workers); the worker decodes and crops, and sends uint8
clips with their colour parameters; the batch is copied to the device (pinned, non-blocking on CUDA) and
turned into floats and coloured there, batched (composer.data.clips.on_device). When the device is the CPU,
`composer run` colours in the workers instead (in parallel, the same function and result), as here.

Clips per second over `--epochs` epochs of the whole set, the loader built once per measurement (what a run
pays), `--repeats` interleaved repeats, medians and the ratio. The videos: synthetic 320x240 H.264 clips of
96 frames (torchcodec's encoder), 8 frames sampled per clip, cropped to 224.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import torch
from common import ratio, save, summary, synthetic_videos
from torch.utils.data import DataLoader
from torchvision import tv_tensors
from torchvision.transforms import v2

from composer.data.clips import ClipConfig, ClipDataset, collate, on_device
from composer.data.datasets import Item
from composer.data.video import BadVideo, decode_threads, frame_count, open_video


class BeforeClips(ClipDataset):
    """The pre-issue-12 worker: the whole augmentation on the CPU, float32 clips out."""

    def __init__(self, items, config: ClipConfig, seed: int = 0) -> None:
        super().__init__(items, config, train=True, seed=seed)
        self.epoch = 0
        self.full = v2.Compose([v2.RandomResizedCrop(config.size, scale=(0.25, 1.0), antialias=True),
                                v2.RandomHorizontalFlip(0.5),
                                v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
                                v2.RandomGrayscale(p=0.2)])

    def __getitem__(self, i: int) -> dict:
        item = self.items[i]
        rng = random.Random(f"{self.seed}/{self.epoch}/{i}")
        try:
            decoder = open_video(item.path, self.config.device)
            frames = self._frames(decoder, frame_count(decoder), rng, 0, item.path)
        except BadVideo as e:
            return {"bad": str(e), "index": i}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(rng.getrandbits(62))
            video = self.full(tv_tensors.Video(frames)).as_subclass(torch.Tensor).float() / 255.0
        return {"video": video, "label": item.label, "index": i}


def before(items, workers: int, batch: int, epochs: int, device: str) -> float:
    dataset = BeforeClips(items, ClipConfig(frames=8, size=224))
    start, clips = time.perf_counter(), 0
    for epoch in range(epochs):
        dataset.epoch = epoch
        loader = DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers, collate_fn=collate,
                            generator=torch.Generator().manual_seed(epoch))
        for b in loader:
            video = b["video"].to(device, non_blocking=True)
            clips += len(video)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return clips / (time.perf_counter() - start)


def after(items, workers: int, batch: int, epochs: int, device: str) -> float:
    from accelerate import Accelerator

    from composer.train.loop import Settings, TrainLoader

    accelerator = Accelerator(cpu=device == "cpu")
    config = ClipConfig(frames=8, size=224, threads=decode_threads(workers),
                        colour_in_worker=device == "cpu" and workers > 0)  # what `composer run` chooses
    start, clips = time.perf_counter(), 0
    loader = TrainLoader(ClipDataset(items, config, train=True), Settings(batch_size=batch, workers=workers),
                         accelerator, seed=0)
    for epoch in range(epochs):
        for b in loader.epoch(epoch):
            video = on_device(b, accelerator.device)
            clips += len(video)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return clips / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=48)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    items = [Item(p, 0) for p in synthetic_videos(Path(tempfile.mkdtemp()), args.videos)]
    rates: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(args.repeats):  # interleaved
        rates["before"].append(before(items, args.workers, args.batch, args.epochs, args.device))
        rates["after"].append(after(items, args.workers, args.batch, args.epochs, args.device))
    a, b, r = summary(rates["after"]), summary(rates["before"]), ratio(rates["after"], rates["before"])
    lines = ["## 8. The training input pipeline before and after issue 12", "",
             f"{args.videos} synthetic 320x240 clips of 96 frames, 8 frames sampled, RandomResizedCrop to 224, flip, "
             f"colour jitter (p 0.8), greyscale (p 0.2); {args.workers} workers, batches of {args.batch}, "
             f"{args.epochs} epochs per measurement (loader built inside it), device {args.device}, "
             f"{args.repeats} interleaved repeats; clips per second, median (min-max).", "",
             "| pipeline | clips/s |", "|---|---|",
             f"| before (new loader per epoch, CPU colour, float32 from workers) | {b['median']:.1f} "
             f"({b['min']:.1f}-{b['max']:.1f}) |",
             f"| after (persistent workers; on a GPU uint8 from workers, colour batched there; on the CPU colour in the workers) | {a['median']:.1f} "
             f"({a['min']:.1f}-{a['max']:.1f}) |",
             f"| ratio after / before | {r['median']:.2f} ({r['min']:.2f}-{r['max']:.2f}) |"]
    save("9_pipeline", {"rates": rates, "args": vars(args)}, "\n".join(lines))


if __name__ == "__main__":
    main()
