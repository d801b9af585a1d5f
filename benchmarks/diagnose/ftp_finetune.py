"""FTP's fine-tuning stage in isolation (docs/reproduction.md, "FTP on the VideoMAE demo weights").

From a finished FTP run (demo weights, tiny), the frozen processors give features of the 192 demo training
clips: clean (one un-augmented view) and augmented (the run's own crop and colour draws, 3 per clip, or one
part of them). A fresh integration + linear head (the spec's: LayerNorm, Linear to 512, GELU, Linear) trains
on them with the stage's optimiser (AdamW, wd 0.05, one warm-up epoch then cosine, batch 8, 24 steps an
epoch), and is scored on the clean training and test clips: does the stage fit its training split when it
is shown clean clips, and what does the augmentation cost?
Usage: .venv/bin/python benchmarks/diagnose/ftp_finetune.py RUN_DIR [--augment full|colour|crop|crop0.6]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
from torchvision.transforms import v2

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from demo_views import outputs_on, train_steps  # noqa: E402

import composer.data.clips as clips  # noqa: E402
from composer.compiler.compile import BuildOptions, compile_spec  # noqa: E402
from composer.data.datasets import load_dataset  # noqa: E402
from composer.rundir.checkpoint import load_trainable  # noqa: E402
from composer.spec.load import load_spec  # noqa: E402

PROCESSORS = ["f_category", "f_components", "f_description", "f_context"]
NO_COLOUR = torch.tensor([1.0, 1.0, 1.0, 0.0, 0, 1, 2, 3, 0.0, 0.0])  # identity factors, not jittered, not grey


def restrict(augment: str) -> None:
    """Keep one part of the run's augmentation (the loader's own functions, replaced for this process)."""
    if augment == "colour":
        clips.train_geometry = lambda size, flip: v2.Compose([v2.Resize(size, antialias=True), v2.CenterCrop(size)])
    elif augment.startswith("crop"):
        clips.draw_colour = lambda rng: NO_COLOUR.clone()
        if augment != "crop":
            low = float(augment[4:])
            clips.train_geometry = lambda size, flip: v2.Compose([v2.RandomResizedCrop(size, scale=(low, 1.0),
                                                                                        antialias=True)])


def features(model, index, items, frames: int, train: bool, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The 4 processors' outputs, concatenated: what the integration layer reads."""
    out, labels = outputs_on(model, index, items, frames, PROCESSORS, train, seed)
    return torch.cat([out[k] for k in PROCESSORS], -1), labels


def fit(draws, clean, test, epochs: int, lr: float, seed: int = 0) -> tuple[float, float, float]:
    torch.manual_seed(seed)
    width = clean[0].shape[1]
    head = torch.nn.Sequential(torch.nn.LayerNorm(width), torch.nn.Linear(width, 512), torch.nn.GELU(),
                               torch.nn.Linear(512, 8))
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=0.05)
    losses = train_steps(head, draws, optimizer, epochs, warm=24, seed=seed)
    with torch.no_grad():
        def top1(x, y):
            return 100.0 * (head(x).argmax(-1) == y).float().mean().item()
        return top1(*clean), top1(*test), sum(losses[-24:]) / 24


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--augment", default="full", choices=["full", "colour", "crop", "crop0.6"])
    args = parser.parse_args()
    torch.manual_seed(0)
    spec = load_spec(args.run / "spec.yaml", ["inputs.video.size=64"])
    model = compile_spec(spec, BuildOptions(device="cpu", tiny=True, num_classes=8, weights="demo"))
    load_trainable(model, args.run / "checkpoints")
    model.eval()
    index = load_dataset("demo", None)
    model.use_dataset_files(index.files)
    frames = spec.inputs["video"].frames
    clean = features(model, index, index.splits["train"], frames, False)
    test = features(model, index, index.splits["test"], frames, False)
    restrict(args.augment)
    draws = [features(model, index, index.splits["train"], frames, True, seed) for seed in range(3)]
    cosine = torch.nn.functional.cosine_similarity(draws[0][0], clean[0]).mean().item()
    print(f"augmentation {args.augment}: mean cosine of an augmented clip's features to its clean one {cosine:.3f}")
    for name, data, epochs, lr in [("clean, 10 epochs", [clean], 10, 1e-3), ("clean, 30 epochs", [clean], 30, 1e-3),
                                   ("augmented, 10 epochs", draws, 10, 1e-3), ("augmented, 30 epochs", draws, 30, 1e-3),
                                   ("augmented, 10 epochs, lr 3e-3", draws, 10, 3e-3)]:
        train, tested, loss = fit(data, clean, test, epochs, lr)
        print(f"{name}: train top-1 (clean) {train:.1f}, test {tested:.1f}, last-epoch loss {loss:.3f}", flush=True)


if __name__ == "__main__":
    main()
