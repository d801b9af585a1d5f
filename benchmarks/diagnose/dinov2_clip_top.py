"""DINOv2 + CLIP's trainable top in isolation (docs/reproduction.md, "DINOv2 + CLIP").

The spec (demo weights, tiny, 64 px) gives DINOv2's frozen per-frame features of the 192 demo training and 128
test clips (one clean view each) and the class-text embeddings. First, logistic-regression probes on those
features: the frame mean (blind to order), the 8 frames concatenated, last minus first frame: is the order
of the demo's classes in the frames at all? Then the spec's own top (frame tokens, fusion transformer, cosine
logits against the class texts) trains on the cached frames, without DoRA or augmentation, with the spec's
optimiser (AdamW lr 5e-4, wd 0.05, warm-up 2/3 of an epoch, cosine, batch 8, 24 steps an epoch), for each
start of the position embeddings given and each seed.
Usage: .venv/bin/python benchmarks/diagnose/dinov2_clip_top.py [--position-std 0.02 1.0] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from demo_views import outputs_on, train_steps  # noqa: E402

from composer.compiler.compile import BuildOptions, compile_spec  # noqa: E402
from composer.data.datasets import load_dataset  # noqa: E402
from composer.spec.load import load_spec  # noqa: E402

SPEC = Path(__file__).resolve().parents[2] / "specs/papers/dinov2-clip-dora.yaml"


def features(model, index, items, frames: int, train: bool = False, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    out, labels = outputs_on(model, index, items, frames, ["frames"], train, seed)
    return out["frames"], labels


def probe(train: tuple, test: tuple, l2: float = 1e-3) -> tuple[float, float]:
    (x, y), (xt, yt) = train, test
    mean, std = x.mean(0), x.std(0) + 1e-6
    x, xt = (x - mean) / std, (xt - mean) / std
    weight = torch.zeros(x.shape[1], 8, requires_grad=True)
    bias = torch.zeros(8, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(x @ weight + bias, y) + l2 * (weight ** 2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return tuple(100.0 * ((a @ weight + bias).argmax(-1) == b).float().mean().item() for a, b in ((x, y), (xt, yt)))


def train_top(model, train: tuple, test: tuple, class_emb: torch.Tensor, position_std: float, seed: int,
              epochs: int = 10, draws: list[tuple] | None = None) -> tuple[float, float, list[float]]:
    """`draws`: what it trains on, one per epoch in turn (augmented views); default the clean `train`."""
    torch.manual_seed(seed)
    tokens, fusion = copy.deepcopy(model.components["frame_tokens"]), copy.deepcopy(model.components["fusion"])
    with torch.no_grad():
        tokens.position.normal_(0, position_std)
    parameters = [*tokens.parameters(), *fusion.parameters()]
    for p in parameters:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(parameters, lr=5e-4, weight_decay=0.05)
    texts = F.normalize(class_emb, dim=-1)

    def logits(x):
        return 100.0 * F.normalize(fusion(tokens(x), class_emb), dim=-1) @ texts.t()

    losses = train_steps(logits, draws or [train], optimizer, epochs, warm=16, seed=seed)
    with torch.no_grad():
        train_top1, test_top1 = (100.0 * (logits(a).argmax(-1) == b).float().mean().item() for a, b in (train, test))
    return train_top1, test_top1, [round(sum(losses[k:k + 24]) / 24, 2) for k in range(0, len(losses), 24)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--position-std", type=float, nargs="+", default=[0.02, 1.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--augmented", action="store_true",
                        help="train on the run's augmented views (crop and colour, 3 draws per clip) instead of clean ones")
    args = parser.parse_args()
    torch.manual_seed(0)
    spec = load_spec(SPEC, ["inputs.video.size=64"])
    model = compile_spec(spec, BuildOptions(device="cpu", tiny=True, num_classes=8, weights="demo"))
    model.eval()
    index = load_dataset("demo", None)
    model.use_dataset_files(index.files)
    frames = spec.inputs["video"].frames
    x, y = features(model, index, index.splits["train"], frames)
    xt, yt = features(model, index, index.splits["test"], frames)
    with torch.no_grad():
        class_emb = model({"class_names": index.classes}, outputs=["class_emb"])["class_emb"]
    print("frame mean probe train/test %.1f / %.1f" % probe((x.mean(1), y), (xt.mean(1), yt)))
    print("frames concatenated probe train/test %.1f / %.1f" % probe((x.flatten(1), y), (xt.flatten(1), yt)))
    print("last minus first probe train/test %.1f / %.1f" % probe((x[:, -1] - x[:, 0], y), (xt[:, -1] - xt[:, 0], yt)))
    draws = None
    if args.augmented:
        draws = [features(model, index, index.splits["train"], frames, True, s) for s in range(3)]
        cosine = F.cosine_similarity(draws[0][0].flatten(1), x.flatten(1)).mean().item()
        print(f"mean cosine of an augmented clip's frames to its clean ones {cosine:.3f}")
    for std in args.position_std:
        for seed in args.seeds:
            train, test, losses = train_top(model, (x, y), (xt, yt), class_emb, std, seed, draws=draws)
            print(f"top, positions N(0, {std}), seed {seed}: train {train:.1f} test {test:.1f}, epoch losses {losses}",
                  flush=True)


if __name__ == "__main__":
    main()
