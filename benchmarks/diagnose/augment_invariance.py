"""Does a VideoMAE demo file keep its features under the run's augmentation? (docs/reproduction.md, "FTP on the
VideoMAE demo weights").

For each file: a linear probe of the frozen tower on the demo (benchmarks/demo_weights_eval.py's `probe`: clean
training clips, train / test top-1), the mean cosine between a training clip's features and those of the
same clip as `composer run` augments it (crop of a quarter to all of the frame, colour jitter, greyscale;
centred on the clean features' mean, and raw), and the same probe trained on one augmented view of each
training clip, scored on the clean training clips: how much of the training split survives the augmentation.
Usage: .venv/bin/python benchmarks/diagnose/augment_invariance.py [FILE ...]   (default: the committed file)
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from demo_weights_eval import decoded, probe, split_rows  # noqa: E402

from composer.backbones.demo_weights import demo_file  # noqa: E402
from composer.backbones.registry import Request, get_family  # noqa: E402
from composer.data import transforms  # noqa: E402
from composer.data.demo import demo_folder  # noqa: E402


def tower(path: str):
    torch.manual_seed(0)
    request = Request(size="ViT-B/16", tiny=True, weights=path, load=True, image_size=64, frames=8)
    return get_family("videomae").build(request, None, "videomae").towers["visual"]


def augmented(video: torch.Tensor, seed: int) -> torch.Tensor:
    """[N, T, 3, S, S] in [0, 1] as the run's loader and device augment training clips, seeded."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    geometry = transforms.train_geometry(video.shape[-1], flip=False)
    cropped = torch.stack([transforms.crop((clip * 255).round().to(torch.uint8), geometry) for clip in video])
    colours = torch.stack([transforms.draw_colour(rng) for _ in video])
    return transforms.colour(transforms.to_unit(cropped), colours)


def features(t, video: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out = torch.cat([t.run(video[i:i + 32], grad_from=None, active=False)[""] for i in range(0, len(video), 32)])
    return out.mean(1) if out.dim() == 3 else out


def main() -> None:
    files = sys.argv[1:] or [str(demo_file("videomae", "ViT-B/16")[0])]
    root = demo_folder(None)
    train, test = decoded(root, split_rows(root, "train")), decoded(root, split_rows(root, "test"))
    for path in files:
        t = tower(path)
        clean, moved = features(t, train[0]), features(t, augmented(train[0], 1))
        centre = clean.mean(0)
        cosine = F.cosine_similarity(clean - centre, moved - centre).mean().item()
        raw = F.cosine_similarity(clean, moved).mean().item()
        on_clean = probe(t, train, test)
        from_augmented = probe(t, (augmented(train[0], 2), train[1]), train)["probe_test_top1"]
        print(f"{path}: probe train / test {on_clean['probe_train_top1']} / {on_clean['probe_test_top1']}; "
              f"cosine clean vs augmented {cosine:.3f} (centred), {raw:.3f} (raw); probe trained on augmented "
              f"views, clean training clips {from_augmented}", flush=True)


if __name__ == "__main__":
    main()
