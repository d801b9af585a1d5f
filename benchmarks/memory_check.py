"""The memory bill `composer build --batch-size N` predicts, against what a real training step allocates on CUDA
(torch.cuda.max_memory_allocated over the second step, when the optimiser state exists). Run by
benchmarks/gpu_check.sh; on a CPU it prints the predictions only (there is no allocator peak to compare).

    python benchmarks/memory_check.py --device cuda [--batch-size 4]
"""

from __future__ import annotations

import argparse

import torch

from composer.compiler.compile import BuildOptions, compile_spec
from composer.compiler.flops import meta_batch
from composer.compiler.memory import MemoryModel
from composer.compiler.memory_sizes import format_bytes
from composer.spec.load import load_spec

# (spec, size): full-size builds with random weights (nothing is downloaded), and one tiny one
CASES = [("clip-adapter", "full"), ("dinov2-dora-linear", "full"), ("clip-adapter", "tiny")]
CLASSES = 8


def real_batch(model, clips: int, device: str) -> dict:
    """The spec's inputs with random values on `device` (the shapes `composer build` counts with)."""
    batch = {}
    for name, value in meta_batch(model, clips).items():
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            batch[name] = torch.rand(value.shape, device=device)
        elif isinstance(value, torch.Tensor):
            batch[name] = torch.randint(0, CLASSES, value.shape, device=device)
        else:
            batch[name] = value
    return batch


def measured_peak(spec, tiny: bool, clips: int, precision: str, device: str) -> int:
    torch.manual_seed(0)
    model = compile_spec(spec, BuildOptions(device=device, tiny=tiny, num_classes=CLASSES))
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    batch = real_batch(model, clips, device)
    half = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    for step in range(2):
        if step == 1:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        with torch.autocast("cuda", dtype=half or torch.float32, enabled=half is not None):
            loss = model(batch, outputs=["loss"])["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
    del model, optimizer, batch
    torch.cuda.empty_cache()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()
    print("| spec | size | precision | batch | predicted peak | measured peak | measured / predicted |")
    print("|---|---|---|---|---|---|---|")
    for name, size in CASES:
        spec = load_spec(name, sets=["inputs.video.size=64"] if size == "tiny" else [])
        meta = compile_spec(spec, BuildOptions(device="meta", tiny=size == "tiny", num_classes=CLASSES))
        for precision in ("fp32", "bf16"):
            predicted = MemoryModel(meta, precision).bill(args.batch_size).peak
            if args.device.startswith("cuda"):
                real = measured_peak(spec, size == "tiny", args.batch_size, precision, args.device)
                cells = f"{format_bytes(real)} | {real / predicted:.2f}"
            else:
                cells = "- | -"
            print(f"| {name} | {size} | {precision} | {args.batch_size} | {format_bytes(predicted)} | {cells} |",
                  flush=True)


if __name__ == "__main__":
    main()
