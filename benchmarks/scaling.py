"""6. Scaling with frames (8, 16, 32) and backbone size (tiny, B, L), for a joint space-time backbone
(ViCLIP + AdaptFormer adapters) and a per-frame one (CLIP + bottleneck adapters).

For every configuration: build time and GFLOPs per clip, on the meta device (no weights, no compute).
Where a CPU can afford it: the training-step time and the bytes autograd keeps, measured for one clip.
Writes benchmarks/scaling.png.
"""

from __future__ import annotations

import argparse
import time

import torch
from common import ROOT, device, interleaved, save, saved_bytes, summary

from composer.compiler.compile import BuildOptions, compile_spec
from composer.compiler.flops import count_flops
from composer.spec.load import load_spec

FAMILIES = {"ViCLIP (joint space-time)": ("specs/baselines/viclip-adaptformer.yaml", {"B": "ViT-B/16", "L": "ViT-L/14"},
                                          "viclip"),
            "CLIP (per frame)": ("specs/baselines/clip-adapter.yaml", {"B": "ViT-B/16", "L": "ViT-L/14"}, "clip")}
FRAMES = (8, 16, 32)


def spec_for(path: str, backbone: str, size: str, frames: int):
    return load_spec(path, sets=[f"inputs.video.frames={frames}", f"backbones.{backbone}.size={size}"])


def meta_numbers(path: str, backbone: str, size: str, tiny: bool, frames: int) -> dict:
    spec = spec_for(path, backbone, size, frames)
    start = time.perf_counter()
    model = compile_spec(spec, BuildOptions(tiny=tiny, num_classes=400))
    build = time.perf_counter() - start
    return {"build_s": build, "gflops": count_flops(model).per_clip / 1e9}


def step_numbers(path: str, backbone: str, size: str, tiny: bool, frames: int, repeats: int) -> dict:
    spec = spec_for(path, backbone, size, frames)
    torch.manual_seed(0)
    model = compile_spec(spec, BuildOptions(device=device(), tiny=tiny, num_classes=10))
    model.train()
    batch = {"video": torch.rand(1, frames, 3, 224, 224, device=device()), "label": torch.zeros(1, dtype=torch.long, device=device()),
             "class_names": [f"c{i}" for i in range(10)]}
    step = lambda: model(batch)["loss"]  # noqa: E731
    times = interleaved({"step": lambda: step().backward()}, repeats=repeats, warmup=1)["step"]
    return {"step": summary(times), "saved": saved_bytes(step, model)}


def plot(rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    colours = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"])
    for family in FAMILIES:
        for size, marker in (("tiny", "o"), ("B", "s"), ("L", "^")):
            rs = [r for r in rows if r["family"] == family and r["size"] == size]
            look = dict(linestyle="-" if family.startswith("ViCLIP") else "--", marker=marker, color=next(colours),
                        label=f"{family.split()[0]} {size}")  # one colour per line in every panel
            axes[0].plot([r["frames"] for r in rs], [r["gflops"] for r in rs], **look)
            timed = [r for r in rs if r.get("step")]
            if timed:
                axes[1].plot([r["frames"] for r in timed], [r["step"]["median"] for r in timed], **look)
                axes[2].plot([r["frames"] for r in timed], [r["saved"] / 2**20 for r in timed], **look)
    for ax, title in zip(axes, ("GFLOPs per clip (meta device)", "training step, s (measured)",
                                "kept for backward, MiB (measured)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(FRAMES, [str(f) for f in FRAMES])
        ax.set_xlabel("frames")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(ROOT / "benchmarks" / "scaling.png", dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--max-step-gflops", type=float, default=400.0,
                        help="time a training step only where the forward is at most this many GFLOPs")
    args = parser.parse_args()
    rows = []
    for family, (path, sizes, backbone) in FAMILIES.items():
        for size in ("tiny", "B", "L"):
            for frames in FRAMES:
                real = sizes.get(size, sizes["B"])
                row = {"family": family, "size": size, "frames": frames,
                       **meta_numbers(path, backbone, real, size == "tiny", frames)}
                if row["gflops"] <= args.max_step_gflops:
                    row.update(step_numbers(path, backbone, real, size == "tiny", frames, args.repeats))
                rows.append(row)
                print(row, flush=True)
    plot(rows)
    lines = ["## 6. Scaling with frames and backbone size", "",
             "One clip at 224 px. Build time and GFLOPs on the meta device; the training step (forward, backward) "
             f"and the bytes kept for backward measured where the forward costs at most {args.max_step_gflops:g} "
             "GFLOPs (the rest would take minutes per step on this CPU). Plot: `benchmarks/scaling.png`.", "",
             "| backbone | size | frames | build (s) | GFLOPs / clip | step (s) | kept for backward |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        step = f"{r['step']['median']:.2f}" if r.get("step") else "not measured"
        saved = f"{r['saved'] / 2**20:.0f} MiB" if r.get("saved") else "-"
        lines.append(f"| {r['family']} | {r['size']} | {r['frames']} | {r['build_s']:.2f} | {r['gflops']:.1f} | "
                     f"{step} | {saved} |")
    save("6_scaling", {"rows": rows}, "\n".join(lines))


if __name__ == "__main__":
    main()
