"""10. The up-front scan of `composer run` on 20,000 videos: first scan, second scan, resume.

A synthetic `folder` dataset: one tiny mp4 (8 frames, 32x32, H.264) copied under 20,000 names, each with its
own modification time, in 10 class folders (train) plus a test folder, and a few broken files (truncated,
not a video). Rows:

- before: the scan as `composer run` did it before the cache, one video after another (no cache);
- first scan: a new `composer run` on a cold cache (`--workers` threads);
- second scan: a second new run on the same dataset (the cache answers);
- resume: `composer run --resume` of the first run (the cache answers);
- touched: the scan after 200 files (1% of 20,000) got a new modification time (they are opened again).

The run rows are the scan times `composer run` writes to run.log; the run trains one step and tests on the
test folder in between (not timed). The files sit in the page cache (just written): on a disk or a network
share the first scan (and before) pay the reads as well, the cached ones only the metadata. Goal: the
second scan within 2% of the first. Usage: python benchmarks/scan.py [--videos 20000] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

import torch
from common import save

from composer.data.check import CheckReport, check_videos
from composer.data.datasets import load_dataset
from composer.data.scan import ScanCache
from composer.rundir.resume import read_record, resumed_options
from composer.train.run import Run, RunOptions

CLASSES, TEST, BROKEN = 10, 200, 20
SPEC = "specs/baselines/clip-linear-probe.yaml"
SETS = ["inputs.video.size=32", "inputs.video.frames=4", "train.views={clips: 1, crops: 1}"]


def make_dataset(root: Path, count: int) -> list[Path]:
    """`count` copies of one tiny mp4 under distinct names and times; BROKEN of them broken. The paths."""
    from torchcodec.encoders import VideoEncoder

    clip = (torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    root.mkdir(parents=True)
    one = root / "one.mp4"
    VideoEncoder(clip, frame_rate=8).to_file(str(one))
    data = one.read_bytes()
    one.unlink()
    paths, start = [], time.time_ns() - 10**15
    for i in range(count):
        split = "test" if i < TEST else "train"
        path = root / split / f"class{i % CLASSES}" / f"video{i:06d}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        broken = i % (count // BROKEN) == 1
        truncated = (i // (count // BROKEN)) % 2
        path.write_bytes(data[: len(data) // 2] if broken and truncated else b"not a video" if broken else data)
        os.utime(path, ns=(start + i * 10**6, start + i * 10**6))
        paths.append(path)
    return paths


def scan_seconds(run_dir: Path) -> tuple[float, int, int]:
    """(seconds, videos, remembered) from the newest scan line of run.log."""
    lines = re.findall(r"(\d+) video\(s\) checked in ([\d.]+) s \((\d+) remembered",
                       (run_dir / "run.log").read_text())
    videos, seconds, cached = lines[-1]
    return float(seconds), int(videos), int(cached)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="composer-scan-"))
    try:
        root, out = folder / "data", folder / "runs"
        start = time.perf_counter()
        make_dataset(root, args.videos)
        made = time.perf_counter() - start
        start = time.perf_counter()
        index = load_dataset("folder", root)
        indexed = time.perf_counter() - start
        items = [*index.splits["train"], *index.splits["test"]]

        start = time.perf_counter()
        before = check_videos(CheckReport("folder"), items, decode=False, workers=1, cache=None)
        serial = time.perf_counter() - start

        options = RunOptions(dataset="folder", data_root=str(root), tiny=True, epochs=1, max_steps=1, batch_size=8,
                             workers=args.workers, out=str(out), sets=list(SETS), seed=0, device="cpu",
                             log_with=["none"])
        first = Run(SPEC, options)
        rows = {"first": scan_seconds(first.dir)}
        first.fit()  # one step and the test: a checkpoint to resume from
        first.finish()
        second = Run(SPEC, options)
        rows["second"] = scan_seconds(second.dir)
        second.finish()
        resumed_with, _ = resumed_options(read_record(first.dir), {}, [])
        resumed = Run(None, resumed_with, resume=first.dir)
        rows["resume"] = scan_seconds(first.dir)
        resumed.finish()

        touched = items[:: max(1, len(items) // 200)][:200]  # 1% of 20,000
        for item in touched:
            stat = item.path.stat()
            os.utime(item.path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        start = time.perf_counter()
        report = check_videos(CheckReport("folder"), items, decode=False, workers=args.workers,
                              cache=ScanCache.for_dataset("folder", root, out / ".scan-cache"))
        rows["touched"] = (time.perf_counter() - start, report.checked, report.cached)
        assert report.bad == before.bad and len(before.bad) == BROKEN
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    share = rows["second"][0] / rows["first"][0]
    lines = ["## 10. The up-front scan: first run, second run, resume", "",
             f"`composer run`'s scan of every video of a `folder` dataset of {args.videos:,} tiny mp4s (8 frames, "
             f"32x32; {BROKEN} broken), files in the page cache, --workers {args.workers}, "
             f"{os.cpu_count()} CPUs (benchmarks/scan.py; one run). Writing the set took {made:.0f} s, its index "
             f"(listing the folders) {indexed:.1f} s at every start, not cached.", "",
             "| scan | videos | from the cache | seconds |", "|---|---|---|---|",
             f"| before: one after another, no cache | {before.checked:,} | 0 | {serial:.1f} |"]
    names = {"first": "first run (cold cache)", "second": "second run", "resume": "`--resume` of the first run",
             "touched": f"after {len(touched)} files were touched ({100 * len(touched) / len(items):.0f}%)"}
    for key, name in names.items():
        seconds, videos, cached = rows[key]
        lines.append(f"| {name} | {videos:,} | {cached:,} | {seconds:.2f} |")
    lines += ["", f"The second scan took {100 * share:.2f}% of the first (goal: at most 2%)."]
    save("10_scan", {"rows": rows, "before": serial, "index": indexed, "args": vars(args)}, "\n".join(lines))


if __name__ == "__main__":
    main()
