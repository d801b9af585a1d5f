"""What the demo weights change on the demo set (docs/demo-weights.md): zero-shot top-1 of the CLIP and
ViCLIP zero-shot specs, and how the tiny video embeddings behave, with demo weights against random ones.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/demo_weights_eval.py

- zero-shot top-1 on the demo test split (128 clips, 8 classes, chance 12.5%), through `composer
  predict`'s Predictor (the same build, decoding and test-time sampling), one clip x one crop;
- the frozen backbone's motion top-1 on fresh captioned clips of its own pretraining distribution (13
  motion captions, chance 7.7%): whether it learnt motion at all, before any transfer;
- for the visual tower of each spec's backbone, on the same test videos: the mean pairwise cosine of
  clip embeddings (1.0: every clip looks the same) and the reversal sensitivity |f(x) - f(rev x)| / |f(x)|
  (0: blind to frame order; CLIP's frame mean is 0 by construction);
- for every family with demo weights, a linear probe of its frozen visual tower (the mean of its output
  over 8 frames, standardised; L2-regularised logistic regression by L-BFGS on the 192 training clips),
  train and test top-1: how much of the demo's classes the frozen features carry at all, whatever a
  spec puts on top.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import captioned  # benchmarks/captioned.py, beside this script
import torch
import torch.nn.functional as F
from torchcodec.decoders import VideoDecoder

from composer.backbones.demo_weights import FILES, demo_file, manifest
from composer.backbones.registry import Request, get_family
from composer.data.demo import CLASSES, demo_folder
from composer.deploy.predict import PredictOptions, Predictor

SPECS = {"clip": "clip-zero-shot", "viclip": "viclip-zero-shot"}


def measure(spec: str, weights: str, videos: list[Path], labels: list[str]) -> dict:
    predictor = Predictor(spec, PredictOptions(classes=list(CLASSES), size="tiny", weights=weights, views=(1, 1),
                                               workers=0, batch_size=32))
    results = list(predictor.predict(videos))
    top1 = 100.0 * sum(r.top[0][0] == label for r, label in zip(results, labels)) / len(labels)
    backbone = next(iter(predictor.model.graph.backbones.values()))
    tower = backbone.towers["visual"]
    from composer.data.clips import ClipDataset
    from composer.data.datasets import Item
    from composer.data.transforms import to_unit

    clips = to_unit(torch.stack([ClipDataset([Item(v, 0)], predictor.clip, train=False)[0]["video"][0]
                                 for v in videos]))
    with torch.no_grad():
        def embed(x: torch.Tensor) -> torch.Tensor:
            out = tower.run(x, grad_from=None, active=False)[""]
            return out.mean(dim=1) if out.dim() == 3 else out  # CLIP: per-frame -> frame mean

        f, r = embed(clips), embed(clips.flip(1))
    unit = F.normalize(f, dim=-1)
    cos = unit @ unit.T
    n = len(f)
    return {"top1": round(top1, 2), "motion_in_distribution": motion_in_distribution(backbone),
            "mean_pairwise_cosine": round(((cos.sum() - n) / (n * (n - 1))).item(), 3),
            "reversal_sensitivity": round(((f - r).norm(dim=-1) / f.norm(dim=-1)).mean().item(), 3)}


def motion_in_distribution(backbone, clips: int = 96) -> float:
    """Top-1 (%) of a frozen backbone choosing, for fresh captioned clips (the pretraining distribution),
    the right one of the 13 motion captions "a shape <motion>." (chance 7.7%)."""
    motions = list(captioned.MOTIONS)
    prompts = [f"a shape {captioned._motion_phrase(m, 0.5, torch.Generator().manual_seed(0))}." for m in motions]
    b = captioned.batch(clips, torch.Generator().manual_seed(123))
    with torch.no_grad():
        video = backbone.towers["visual"].run(b.video, grad_from=None, active=False)[""]
        video = video.mean(dim=1) if video.dim() == 3 else video
        text = backbone.towers["text"].run(prompts, grad_from=None, active=False)[""]
    pred = (F.normalize(video, dim=-1) @ F.normalize(text, dim=-1).T).argmax(-1)
    return round(100.0 * (pred == torch.tensor([motions.index(m) for m in b.motions])).float().mean().item(), 1)


def split_rows(root: Path, name: str) -> list[list[str]]:
    """The demo split's rows: [relative video path, class index]."""
    return [line.split() for line in (root / f"{name}.txt").read_text().splitlines() if line.strip()]


def decoded(root: Path, rows: list[list[str]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Videos [N, 8, 3, S, S] in [0, 1] (8 of the 17 frames, first and last included) and their labels."""
    keep = torch.linspace(0, 16, 8).round().long().tolist()
    videos = [VideoDecoder(str(root / path)).get_frames_at(keep).data for path, _ in rows]
    return torch.stack(videos).float() / 255, torch.tensor([int(label) for _, label in rows])


def linear_probe(family: str, weights: str, train: tuple[torch.Tensor, torch.Tensor],
                 test: tuple[torch.Tensor, torch.Tensor]) -> dict:
    """Train and test top-1 (%) of a linear probe on `family`'s frozen visual tower ("demo" or "random")."""
    entry = manifest()["files"][family]
    path = str(demo_file(family, entry["size"])[0]) if weights == "demo" else None
    torch.manual_seed(0)
    request = Request(size=entry["size"], tiny=True, weights=path, load=path is not None, image_size=64, frames=8,
                      activation=entry.get("activation"))
    return probe(get_family(family).build(request, None, family).towers["visual"], train, test)


def probe(tower, train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor]) -> dict:
    """Train and test top-1 (%) of a linear probe on a frozen visual tower (also what benchmarks/pretrain_demo.py
    experiments were judged by)."""

    def features(video: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            out = torch.cat([tower.run(video[i:i + 32], grad_from=None, active=False)[""]
                             for i in range(0, len(video), 32)])
        return out.mean(dim=1) if out.dim() == 3 else out

    (train_x, train_y), (test_x, test_y) = train, test
    train_f, test_f = features(train_x), features(test_x)
    mean, std = train_f.mean(0), train_f.std(0) + 1e-6
    train_f, test_f = (train_f - mean) / std, (test_f - mean) / std
    w = torch.zeros(train_f.shape[1], len(CLASSES), requires_grad=True)
    b = torch.zeros(len(CLASSES), requires_grad=True)
    optimizer = torch.optim.LBFGS([w, b], max_iter=200)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(train_f @ w + b, train_y) + 1e-2 * w.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    top1 = lambda f, y: round(100.0 * ((f @ w + b).argmax(-1) == y).float().mean().item(), 1)  # noqa: E731
    return {"probe_train_top1": top1(train_f, train_y), "probe_test_top1": top1(test_f, test_y)}


def main() -> None:
    root = demo_folder(None)
    rows = split_rows(root, "test")
    videos = [root / path for path, _ in rows]
    labels = [CLASSES[int(label)] for _, label in rows]
    out = {}
    for family, spec in SPECS.items():
        for weights in ("random", "demo"):
            out[f"{spec} {weights}"] = measure(spec, weights, videos, labels)
            print(f"{spec:18s} {weights:6s} {json.dumps(out[f'{spec} {weights}'])}", flush=True)
    train, test = decoded(root, split_rows(root, "train")), decoded(root, rows)
    for family in (f for f in FILES if "visual" in get_family(f).towers):
        for weights in ("random", "demo"):
            out[f"probe {family} {weights}"] = linear_probe(family, weights, train, test)
            print(f"probe {family:12s} {weights:6s} {json.dumps(out[f'probe {family} {weights}'])}", flush=True)
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
