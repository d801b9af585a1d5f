"""2. The plan: training memory and step time with the plan against `--no-plan`.

Specs whose trainable parts sit in the top layers (MSTA's few-shot setting: adapters in blocks 8-12 of
ViCLIP-B/16) and TDS-CLIP (a side network reading a frozen CLIP). With the plan, blocks below the first
attachment run without autograd, frozen blocks the gradient only passes through keep just their input
and run again in the backward pass, and the frozen text tower runs once per class set. Measured: the
bytes autograd keeps for backward (deterministic), the GPU peak where there is a GPU, and the step time.
Goal: memory <= 0.6x.
"""

from __future__ import annotations

import argparse

import torch
from common import cuda_peak, device, fmt, interleaved, mib, ratio, save, saved_bytes, summary

from composer.compiler.compile import BuildOptions, compile_spec
from composer.spec.load import load_spec

SPECS = [("MSTA few-shot (layers 8-12)", "specs/papers/msta-few-shot.yaml", []),
         ("TDS-CLIP", "specs/papers/tds-clip.yaml", [])]


def batch_for(model, clips: int, classes: int) -> dict:
    from composer.graph.infer import input_types
    from composer.spec.ir import ClassesInput, LabelInput, VideoInput

    out = {}
    for name, t in input_types(model.spec).items():
        inp = model.spec.inputs[name]
        if isinstance(inp, VideoInput):
            out[name] = torch.rand((clips,) + tuple(t.shape[1:]), device=device())
        elif isinstance(inp, LabelInput):
            out[name] = torch.arange(clips, device=device()) % classes
        elif isinstance(inp, ClassesInput):
            out[name] = [f"action {i}" for i in range(classes)]
    return out


def files(tmp):
    import json

    names = [f"action {i}" for i in range(64)]
    table = {n: {"spatial": [f"{n} a", f"{n} b"], "temporal": [f"{n} c", f"{n} d"]} for n in names}
    path = tmp / "descriptions.json"
    path.write_text(json.dumps(table))
    return {"descriptions": path}


def measure(label: str, spec_path: str, sets: list[str], tiny: bool, frames: int, clips: int, repeats: int, tmp):
    spec = load_spec(spec_path, sets=sets + [f"inputs.video.frames={frames}"])
    models = {}
    for key, plan, recompute in (("plan", True, True), ("stored", True, False), ("no_plan", False, False)):
        torch.manual_seed(0)
        models[key] = compile_spec(spec, BuildOptions(device=device(), tiny=tiny, plan=plan, recompute=recompute,
                                                      num_classes=10))
        models[key].use_dataset_files(files(tmp))
        models[key].train()
    batch = batch_for(models["plan"], clips, 10)
    steps = {key: (lambda m=m: m(batch)["loss"]) for key, m in models.items()}
    times = interleaved({k: (lambda f=f: f().backward()) for k, f in steps.items()}, repeats=repeats)
    saved = {k: saved_bytes(f, models[k]) for k, f in steps.items()}
    peak = {k: cuda_peak(f) for k, f in steps.items()}
    return {"name": label, "size": "tiny" if tiny else "base", "frames": frames, "clips": clips,
            **{k: summary(times[k]) for k in steps}, "time_ratio": ratio(times["plan"], times["no_plan"]),
            "time_ratio_stored": ratio(times["stored"], times["no_plan"]),
            **{f"saved_{k}": saved[k] for k in steps}, "memory_ratio": saved["plan"] / saved["no_plan"],
            "memory_ratio_stored": saved["stored"] / saved["no_plan"], **{f"peak_{k}": peak[k] for k in steps},
            "plan_lines": models["plan"].plan.describe(models["plan"].graph)}


def main() -> None:
    import tempfile
    from pathlib import Path

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--base", action="store_true", help="also the full-width models (slow on a CPU)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    rows = []
    for label, path, sets in SPECS:
        rows.append(measure(label, path, sets, True, 8, 1, args.repeats, tmp))
        if args.base:
            rows.append(measure(label, path, sets, False, 8, 1, max(2, args.repeats - 1), tmp))
    lines = ["## 2. The plan against `--no-plan`", "",
             "One training step of one 8-frame clip at 224 px (tiny: the real sequence lengths with 64-wide "
             "towers; base: the full model). *plan* is the default; *stored* is the plan with `--no-recompute` "
             "(no autograd below the first attachment, activations of the blocks above stored); *no plan* is "
             "`--no-plan`. Memory: bytes autograd keeps for the backward pass. Ratios are against *no plan*. "
             "Goal: memory ratio <= 0.6.", "",
             "| spec | size | saved for backward: plan / stored / no plan | memory ratio: plan, stored | step: plan | "
             "step: stored | step: no plan | time ratio: plan, stored | GPU peak: plan / stored / no plan |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        t, u = r["time_ratio"], r["time_ratio_stored"]
        lines.append(f"| {r['name']} | {r['size']} | {mib(r['saved_plan'])} / {mib(r['saved_stored'])} / "
                     f"{mib(r['saved_no_plan'])} | {r['memory_ratio']:.3f}, {r['memory_ratio_stored']:.3f} | "
                     f"{fmt(r['plan'])} | {fmt(r['stored'])} | {fmt(r['no_plan'])} | {fmt(t, '')}"
                     f", {fmt(u, '')} | "
                     f"{mib(r['peak_plan'])} / {mib(r['peak_stored'])} / {mib(r['peak_no_plan'])} |")
    lines += ["", "What the plan did:", ""]
    seen = set()
    for r in rows:
        if r["name"] not in seen:
            seen.add(r["name"])
            lines += [f"- {r['name']}: " + "; ".join(r["plan_lines"])]
    save("2_plan", {"rows": rows}, "\n".join(lines))


if __name__ == "__main__":
    main()
