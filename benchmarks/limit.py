"""7. The limit, and the run options: achieved FLOP/s of a training step against the machine's peak.

Peak: the FLOP/s of a large matrix multiplication measured in the same run (a fair practical peak for
the dense work that dominates a ViT), in fp32 and in bf16. Achieved: the FLOPs of a training step,
counted by FlopCounterMode on that very step (forward and backward), divided by its measured time.
Then the options a run gains, each measured on the same step: --precision bf16 (autocast) and
--compile (torch.compile, eager fallback).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from common import RESULTS, device, fmt, interleaved, save, summary, sync
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from composer.compiler.compile import BuildOptions, compile_spec
from composer.spec.load import load_spec


def matmul_peak(dtype: torch.dtype, n: int, repeats: int) -> dict:
    a = torch.randn(n, n, device=device(), dtype=dtype)
    b = torch.randn(n, n, device=device(), dtype=dtype)
    times = interleaved({"mm": lambda: a @ b}, repeats=repeats, warmup=2)["mm"]
    return {"dtype": str(dtype), "n": n, "flops_per_s": [2 * n ** 3 / t for t in times]}


def rate(flops_per_s: float) -> str:
    """GFLOP/s on a CPU, TFLOP/s on a GPU, three significant digits."""
    if flops_per_s >= 1e12:
        return f"{flops_per_s / 1e12:.3g} TFLOP/s"
    return f"{flops_per_s / 1e9:.3g} GFLOP/s"


def step_flops(model, batch) -> int:
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(batch)["loss"].backward()
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", default="base", choices=["tiny", "base"])
    parser.add_argument("--frames", type=int, default=2)
    parser.add_argument("--render", action="store_true", help="only rewrite the table from results/7_limit.json")
    args = parser.parse_args()
    if args.render:
        (RESULTS / "7_limit.md").write_text(render(json.loads((RESULTS / "7_limit.json").read_text())) + "\n")
        return
    spec = load_spec("specs/baselines/clip-adapter.yaml", sets=[f"inputs.video.frames={args.frames}"])
    torch.manual_seed(0)
    model = compile_spec(spec, BuildOptions(device=device(), tiny=args.size == "tiny", num_classes=10))
    model.train()
    batch = {"video": torch.rand(1, args.frames, 3, 224, 224, device=device()),
             "label": torch.zeros(1, dtype=torch.long, device=device()), "class_names": [f"c{i}" for i in range(10)]}
    flops = step_flops(model, batch)
    bf16 = torch.autocast(device(), dtype=torch.bfloat16)

    def eager():
        model(batch)["loss"].backward()

    def autocast_bf16():
        with bf16:
            model(batch)["loss"].backward()

    from rich.console import Console

    from composer.train.run import compiled

    fast = compiled(model, Console(stderr=True))
    compile_start = time.perf_counter()
    try:
        fast(batch)["loss"].backward()
        compile_note = f"first call (compiling) {time.perf_counter() - compile_start:.1f} s"
    except Exception as e:  # noqa: BLE001 (reported in the table)
        compile_note = f"failed: {type(e).__name__}"
    sync()
    times = interleaved({"fp32 eager": eager, "bf16 autocast": autocast_bf16,
                         "fp32 torch.compile": lambda: fast(batch)["loss"].backward()}, repeats=args.repeats)
    # bf16 matmuls are emulated on CPUs without bf16 units, and a 2048 one then takes a minute
    n16 = 2048 if torch.cuda.is_available() else 1024
    peaks = [matmul_peak(torch.float32, 2048, args.repeats), matmul_peak(torch.bfloat16, n16, args.repeats)]
    peak32, peak16 = (statistics.median(p["flops_per_s"]) for p in peaks)
    rows = []
    for name, ts in times.items():
        s = summary(ts)
        achieved = flops / s["median"]
        peak = peak16 if "bf16" in name else peak32
        rows.append({"name": name, "step": s, "flops_per_s": achieved, "fraction": achieved / peak})
    data = {"flops": flops, "peaks": peaks, "rows": rows, "compile": compile_note, "args": vars(args)}
    save("7_limit", data, render(data))


def render(data: dict) -> str:
    flops, args, rows = data["flops"], data["args"], data["rows"]
    peak32, peak16 = (statistics.median(p["flops_per_s"]) for p in data["peaks"])
    emulated = peak16 < peak32 / 4  # no bf16 units: the matmul 'peak' is an emulation, not a limit
    lines = ["## 7. The limit and the run options", "",
             f"Training step of CLIP ViT-B/16 + bottleneck adapters ({args['size']}), 1 clip x {args['frames']} frames "
             f"at 224 px: {flops / 1e9:.1f} GFLOPs counted on the step itself (forward and backward, the plan's "
             "recomputation included). Peak: a square matmul in the same run, "
             f"fp32 (n = {data['peaks'][0]['n']}) {rate(peak32)}, bf16 (n = {data['peaks'][1]['n']}) {rate(peak16)}; "
             f"each option is compared with the peak of its own precision. torch.compile: {data['compile']}.", "",
             "| option | step, median (min-max) | achieved | fraction of the matmul peak |",
             "|---|---|---|---|"]
    for r in rows:
        fraction = "- (bf16 emulated)" if emulated and "bf16" in r["name"] else f"{100 * r['fraction']:.1f}%"
        lines.append(f"| {r['name']} | {fmt(r['step'])} | {rate(r['flops_per_s'])} | {fraction} |")
    return "\n".join(lines)

if __name__ == "__main__":
    main()
