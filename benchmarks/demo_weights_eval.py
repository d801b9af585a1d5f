"""What the demo weights change on the demo set (docs/demo-weights.md): zero-shot top-1 of the CLIP and
ViCLIP zero-shot specs, and how the tiny video embeddings behave, with demo weights against random ones.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/demo_weights_eval.py

- zero-shot top-1 on the demo test split (128 clips, 8 classes, chance 12.5%), through `composer
  predict`'s Predictor (the same build, decoding and test-time sampling), one clip x one crop;
- the frozen backbone's motion top-1 on fresh captioned clips of its own pretraining distribution (13
  motion captions, chance 7.7%): whether it learnt motion at all, before any transfer;
- for the visual tower of each spec's backbone, on the same test videos: the mean pairwise cosine of
  clip embeddings (1.0: every clip looks the same) and the reversal sensitivity |f(x) - f(rev x)| / |f(x)|
  (0: blind to frame order; CLIP's frame mean is 0 by construction).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from composer.data.demo import CLASSES, ensure_demo
from composer.train.predict import PredictOptions, Predictor

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
    from composer.data import captioned

    motions = list(captioned.MOTIONS)
    prompts = [f"a shape {captioned._motion_phrase(m, 0.5, torch.Generator().manual_seed(0))}." for m in motions]
    b = captioned.batch(clips, torch.Generator().manual_seed(123))
    with torch.no_grad():
        video = backbone.towers["visual"].run(b.video, grad_from=None, active=False)[""]
        video = video.mean(dim=1) if video.dim() == 3 else video
        text = backbone.towers["text"].run(prompts, grad_from=None, active=False)[""]
    pred = (F.normalize(video, dim=-1) @ F.normalize(text, dim=-1).T).argmax(-1)
    return round(100.0 * (pred == torch.tensor([motions.index(m) for m in b.motions])).float().mean().item(), 1)


def main() -> None:
    root = Path(ensure_demo(None).root)
    rows = [line.split() for line in (root / "test.txt").read_text().splitlines() if line.strip()]
    videos = [root / path for path, _ in rows]
    labels = [CLASSES[int(label)] for _, label in rows]
    out = {}
    for family, spec in SPECS.items():
        for weights in ("random", "demo"):
            out[f"{spec} {weights}"] = measure(spec, weights, videos, labels)
            print(f"{spec:18s} {weights:6s} {json.dumps(out[f'{spec} {weights}'])}", flush=True)
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
