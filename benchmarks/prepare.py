"""8. `composer data prepare`: sparse 8-frame sampling from raw downloads against the prepared copy.

The raw clips stand for typical downloads: 10 seconds at 30 fps, 604x340, H.264 (libx264, CRF 23) with
a keyframe every 250 frames, made from FFmpeg's synthetic testsrc2 pattern with temporal noise (camera
grain, so P-frames carry data as real footage does). Each is prepared with `composer data prepare`
(several settings), then read through composer's own decoding path (composer/data/video.py: approximate
seek mode, sorted indices) with training's segment sampling, the same indices for raw and prepared
(seeded per clip). Single process, so the figure is the decoding cost per clip. Raw and prepared passes
are interleaved; medians with min-max. "Same frames": every sampled raw frame is resized to the prepared
size (bilinear, antialiased) and compared with the prepared frame at the same index; a frame one index off
is shown for scale. Goal: prepared >= 3x the clips/s of raw.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import tempfile
import time
from pathlib import Path

import torch
from common import save, summary

from composer.data.prepare import PrepareOptions, prepare_dataset
from composer.data.sampling import segment_indices
from composer.data.video import frame_count, open_video, read_frames

SETTINGS = [PrepareOptions(short_side=256, keyframe_every=8), PrepareOptions(short_side=256, keyframe_every=16),
            PrepareOptions(short_side=320, keyframe_every=8)]


def raw_clips(folder: Path, count: int) -> list[Path]:
    paths = []
    for i in range(count):
        path = folder / f"clip_{i:03d}.mp4"
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                        f"testsrc2=size=604x340:rate=30:duration={10 + i}", "-ss", str(i),
                        "-vf", f"noise=alls=12:allf=t+u,hue=h={37 * i}", "-c:v", "libx264", "-preset", "medium",
                        "-crf", "23", "-g", "250", "-pix_fmt", "yuv420p", str(path)], check=True)
        paths.append(path)
    return paths


def sample(path: Path, seed: int) -> tuple[list[int], torch.Tensor]:
    """Training's sparse sampling through composer's decoder: 8 frames, one random per segment."""
    decoder = open_video(path)
    indices = segment_indices(frame_count(decoder), 8, train=True, rng=random.Random(seed))
    return indices, read_frames(decoder, indices, path)


def one_pass(paths: list[Path]) -> float:
    start = time.perf_counter()
    for seed, path in enumerate(paths):
        sample(path, seed)
    return len(paths) / (time.perf_counter() - start)


def differences(raw: list[Path], ready: list[Path]) -> dict[str, float]:
    """Pixel differences (0-255) of the same sampled frames, raw resized to the prepared size: the mean, the worst
    frame's mean and the 99.9th percentile pixel; for scale, the mean against the raw frame one index later and the
    closest such wrong frame (a frame mix-up would show as a worst frame at that level)."""
    same, off, pixels = [], [], []
    for seed, (a, b) in enumerate(zip(raw, ready)):
        indices, frames = sample(b, seed)
        decoder = open_video(a)
        both = read_frames(decoder, indices + [min(i + 1, frame_count(decoder) - 1) for i in indices], a).float()
        resized = torch.nn.functional.interpolate(both, size=frames.shape[-2:], mode="bilinear", antialias=True)
        d = (frames.float() - resized[:8]).abs()
        same += d.mean(dim=(1, 2, 3)).tolist()
        off += (frames.float() - resized[8:]).abs().mean(dim=(1, 2, 3)).tolist()
        pixels.append(d.flatten()[::97])
    return {"mean": sum(same) / len(same), "worst_frame": max(same),
            "p999": torch.quantile(torch.cat(pixels), 0.999).item(),
            "one_off_mean": sum(off) / len(off), "closest_wrong_frame": min(off)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    folder = Path(tempfile.mkdtemp())
    source = folder / "raw"
    source.mkdir()
    raw = raw_clips(source, args.clips)
    raw_bytes = sum(p.stat().st_size for p in raw)
    copies, made = {}, {}
    for options in SETTINGS:
        key = f"short side {options.short_side}, keyframe every {options.keyframe_every}"
        target = folder / f"ready-{options.short_side}-{options.keyframe_every}"
        start = time.perf_counter()
        report = prepare_dataset(source, target, options)
        assert report.ok and report.transcoded == len(raw), report.text()
        ready = [target / p.name for p in raw]
        made[key] = {"seconds": time.perf_counter() - start, "bytes": sum(p.stat().st_size for p in ready)}
        copies[key] = ready
    rates: dict[str, list[float]] = {"raw": [], **{k: [] for k in copies}}
    one_pass(raw)  # warm-up (file cache, decoder libraries)
    for _ in range(args.repeats):  # interleaved
        rates["raw"].append(one_pass(raw))
        for key, ready in copies.items():
            rates[key].append(one_pass(ready))
    diffs = {key: differences(raw, ready) for key, ready in copies.items()}
    r = summary(rates["raw"])
    lines = ["## 8. Prepared copies: `composer data prepare`", "",
             f"{args.clips} raw clips like typical downloads: 10 s at 30 fps, 604x340, H.264 (CRF 23) with a keyframe "
             "every 250 frames (testsrc2 with temporal noise), "
             f"{raw_bytes / 2**20:.1f} MiB. Each copy made by `composer data prepare` (2 cores, one FFmpeg per core). "
             "Sparse sampling of 8 frames per clip (training's segments, the same indices raw and prepared) through "
             f"composer's decoder (composer/data/video.py), one process; clips/s over the set, {args.repeats} "
             "interleaved repeats. Frame difference: 0-255 levels against the raw frame at the same index resized to "
             "the copy's size: mean, worst frame's mean, 99.9th percentile pixel; for scale, the same against the "
             "next raw frame (*one frame off*: mean, closest frame). Goal: >= 3x raw.", "",
             "| copy | clips/s | ratio to raw | diff.: mean, worst frame, p99.9 | one frame off: mean, closest | "
             "prepare: s per clip | size |",
             "|---|---|---|---|---|---|---|",
             f"| raw | {r['median']:.1f} ({r['min']:.1f}-{r['max']:.1f}) | 1.00 | - | - | - | "
             f"{raw_bytes / 2**20:.1f} MiB |"]
    for key in copies:
        s, d = summary(rates[key]), diffs[key]
        ratio = [x / y for x, y in zip(rates[key], rates["raw"])]
        lines.append(f"| {key} | {s['median']:.1f} ({s['min']:.1f}-{s['max']:.1f}) | "
                     f"{s['median'] / r['median']:.2f} ({min(ratio):.2f}-{max(ratio):.2f}) | "
                     f"{d['mean']:.2f}, {d['worst_frame']:.2f}, {d['p999']:.0f} | "
                     f"{d['one_off_mean']:.2f}, {d['closest_wrong_frame']:.2f} | "
                     f"{made[key]['seconds'] / args.clips:.2f} | {made[key]['bytes'] / 2**20:.1f} MiB |")
    save("8_prepare", {"rates": rates, "differences": diffs, "prepare": made, "raw_bytes": raw_bytes},
         "\n".join(lines))


if __name__ == "__main__":
    main()
