"""3. Reusing frozen outputs.

(a) The class-text embeddings of a frozen text tower: cached per class set by the plan, against
    recomputed every step (`--no-plan`), for CLIP + adapters with the classes of Kinetics-400.
(b) Frozen features of un-augmented clips cached on disk across epochs (`--cache-features`), for a
    spec whose trainable part sits after a frozen backbone (the CLIP linear probe), on the demo set:
    the time of a training epoch with and without the cache.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch
from common import device, fmt, interleaved, ratio, save, summary
from rich.console import Console

from composer.compiler.compile import BuildOptions, compile_spec
from composer.spec.load import load_spec
from composer.train.run import Run, RunOptions


def text_cache(tiny: bool, classes: int, repeats: int) -> dict:
    spec = load_spec("specs/baselines/clip-adapter.yaml", sets=["inputs.video.frames=8"])
    models = {}
    for plan in (True, False):
        torch.manual_seed(0)
        models[plan] = compile_spec(spec, BuildOptions(device=device(), tiny=tiny, plan=plan, num_classes=classes))
        models[plan].train()
    batch = {"video": torch.rand(2, 8, 3, 224, 224, device=device()), "label": torch.tensor([0, 1], device=device()),
             "class_names": [f"action number {i}" for i in range(classes)]}
    times = interleaved({"cached": lambda: models[True](batch)["loss"].backward(),
                         "recomputed": lambda: models[False](batch)["loss"].backward()}, repeats=repeats)
    return {"size": "tiny" if tiny else "base", "classes": classes, "cached": summary(times["cached"]),
            "recomputed": summary(times["recomputed"]), "ratio": ratio(times["cached"], times["recomputed"])}


def feature_cache(epochs: int, data_root: str | None) -> dict:
    out = Path(tempfile.mkdtemp())
    results, totals = {}, {}
    for label, cache in (("decoded and run every epoch", None), ("cached features", str(out / "features"))):
        options = RunOptions(dataset="demo", data_root=data_root, tiny=True, epochs=epochs, batch_size=16, workers=1,
                             seed=0, out=str(out / "runs"), cache_features=cache,
                             sets=["train.views={clips: 1, crops: 1}"])
        start = time.perf_counter()
        run = Run("specs/baselines/clip-linear-probe.yaml", options, console=Console(quiet=True))
        run.fit()
        totals[label] = time.perf_counter() - start
        records = [json.loads(line) for line in (run.dir / "metrics.jsonl").read_text().splitlines()]
        results[label] = [r["seconds"] for r in records]
    shutil.rmtree(out, ignore_errors=True)
    plain, cached = results["decoded and run every epoch"], results["cached features"]
    return {"epochs": epochs, "plain": plain, "cached": cached, "total_plain": totals["decoded and run every epoch"],
            "total_cached": totals["cached features"],
            "ratio": statistics.median(cached) / statistics.median(plain)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args()
    texts = [text_cache(True, 400, args.repeats), text_cache(False, 101, max(2, args.repeats - 2))]
    features = feature_cache(args.epochs, args.data_root)
    lines = ["## 3. Reusing frozen outputs", "",
             "(a) One training step of CLIP ViT-B/16 + bottleneck adapters (2 clips x 8 frames, 224 px) with the "
             "frozen text tower's class embeddings cached per class set (the plan) or recomputed every step "
             "(`--no-plan`).", "",
             "| size | classes | cached | recomputed | ratio |", "|---|---|---|---|---|"]
    for t in texts:
        q = t["ratio"]
        lines.append(f"| {t['size']} | {t['classes']} | {fmt(t['cached'])} | {fmt(t['recomputed'])} | "
                     f"{fmt(q, '')} |")
    lines += ["", "(b) Training epochs of the CLIP linear probe (tiny, 192 demo clips) with frozen features cached "
                  "on disk (`--cache-features`; computed once before the first epoch, un-augmented clips) or decoded "
                  "and run through the backbone every epoch.", "",
              "| | seconds per epoch | whole run, s (build, cache, epochs, test) |", "|---|---|---|",
              f"| decoded and run every epoch | {', '.join(f'{s:.1f}' for s in features['plain'])} | "
              f"{features['total_plain']:.1f} |",
              f"| cached features | {', '.join(f'{s:.1f}' for s in features['cached'])} | "
              f"{features['total_cached']:.1f} |",
              f"| ratio | {features['ratio']:.3f} (medians) | {features['total_cached'] / features['total_plain']:.3f} |"]
    save("3_reuse", {"text": texts, "features": features}, "\n".join(lines))


if __name__ == "__main__":
    main()
