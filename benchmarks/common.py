"""Shared measuring tools for the benchmarks: interleaved repeats, medians with their spread, memory.

Timings on a shared machine are noisy, so every comparison runs its contenders interleaved (A B A B ...)
after a warm-up, and reports the median and the min-max spread. Memory is measured two ways: the bytes
kept for the backward pass (deterministic, the part of training memory that depends on how the model
is run: what autograd saves and what recomputed regions keep), and on a GPU the peak allocated memory.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parents[1]
# gpu_check.sh points this elsewhere so CUDA rows do not overwrite the CPU results RESULTS.md is built from
RESULTS = Path(os.environ.get("COMPOSER_BENCH_RESULTS", ROOT / "benchmarks" / "results"))
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def interleaved(contenders: dict[str, Callable[[], object]], repeats: int = 5, warmup: int = 1) -> dict[str, list[float]]:
    """Seconds per call of each contender, measured in alternation."""
    for _ in range(warmup):
        for fn in contenders.values():
            fn()
            sync()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, fn in contenders.items():
            sync()
            start = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - start)
    return times


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def fmt(s: dict[str, float], unit: str = "s", scale: float = 1.0) -> str:
    """'median unit (min-max)'; unit "" for ratios."""
    unit = f" {unit}" if unit else ""
    return f"{s['median'] * scale:.3f}{unit} ({s['min'] * scale:.3f}-{s['max'] * scale:.3f})"


def ratio(a: list[float], b: list[float]) -> dict[str, float]:
    """Median of a / median of b, with the spread of the per-repeat ratios."""
    pairs = [x / y for x, y in zip(a, b)]
    return {"median": statistics.median(a) / statistics.median(b), "min": min(pairs), "max": max(pairs)}


def saved_bytes(step: Callable[[], torch.Tensor], module: torch.nn.Module | None = None) -> int:
    """Bytes kept from the forward of `step()` (which returns the loss) for its backward: what autograd
    saves plus the inputs recomputed regions keep (composer.recompute.kept_for_backward)."""
    from composer.recompute import kept_for_backward

    return kept_for_backward(step, module)


def cuda_peak(step: Callable[[], torch.Tensor]) -> int | None:
    if not torch.cuda.is_available():
        return None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    step().backward()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated()


def machine() -> dict[str, object]:
    info = {"python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine(),
            "cpus": os.cpu_count(), "threads": torch.get_num_threads(), "device": device()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def save(name: str, data: dict, markdown: str) -> None:
    """benchmarks/results/<name>.json and .md; run_all.py gathers the .md files into RESULTS.md."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M"), **data}
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2, default=str))
    (RESULTS / f"{name}.md").write_text(markdown.rstrip() + "\n")
    print(markdown)


def mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:.1f} MiB"


def synthetic_videos(folder: Path, count: int) -> list[Path]:
    """`count` 96-frame 320x240 mp4 clips of a random texture sliding sideways (seeded), written once."""
    from torchcodec.encoders import VideoEncoder

    g = torch.Generator().manual_seed(0)
    paths = []
    for i in range(count):
        base = torch.rand(3, 240, 320, generator=g)
        frames = torch.stack([base.roll(shifts=2 * t, dims=2) for t in range(96)])
        path = folder / f"synthetic_{i:03d}.mp4"
        VideoEncoder((frames * 255).to(torch.uint8), frame_rate=24).to_file(str(path))
        paths.append(path)
    return paths
