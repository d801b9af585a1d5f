"""How much of the demo's motion a training crop keeps (docs/reproduction.md, "FTP on the VideoMAE demo weights").

The demo's training clips are rendered again with the generator the set was made with, recording each frame's
shape mask; then, for `--draws` random-resized crops per clip with `composer run`'s training parameters (area
0.25-1, aspect 3/4-4/3; composer/data/transforms.py), it counts the frames whose shape stays at least half
inside the crop. A view whose shape is inside in fewer than 2 frames shows no motion at all, so its class
cannot be read from it by any model; a view with the shape inside in every frame keeps the whole motion.
Usage: .venv/bin/python benchmarks/diagnose/crop_coverage.py [--draws 20] [--scale 0.25 1.0]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torchvision.transforms import v2

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from composer.data import demo  # noqa: E402


def training_masks(seed: int = 0) -> list[torch.Tensor]:
    """bool [FRAMES, S, S] per training clip, in the order `demo.generate` renders them (the test split after)."""
    masks: list[torch.Tensor] = []
    frames: list[torch.Tensor] = []
    original = demo._shape_mask

    def recording(*args, **kwargs):
        mask = original(*args, **kwargs)
        frames.append(mask)
        return mask

    demo._shape_mask = recording
    try:
        g = torch.Generator().manual_seed(seed)
        for forward, _backward in demo.PAIRS:
            for _direction in range(2):
                for _ in range(demo.TRAIN_PER_CLASS):
                    frames.clear()
                    demo.render(forward, g)
                    masks.append(torch.stack(frames))
    finally:
        demo._shape_mask = original
    return masks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--scale", type=float, nargs=2, default=[0.25, 1.0])
    args = parser.parse_args()
    torch.manual_seed(0)
    masks = training_masks()
    inside_counts = []
    for mask in masks:
        area = mask.flatten(1).sum(1).float()
        for _ in range(args.draws):
            top, left, h, w = v2.RandomResizedCrop.get_params(mask[:1].float(), args.scale, (3 / 4, 4 / 3))
            kept = mask[:, top:top + h, left:left + w].flatten(1).sum(1).float() / area
            inside_counts.append(int((kept >= 0.5).sum()))
    counts = torch.tensor(inside_counts)
    n = demo.FRAMES
    print(f"{len(masks)} training clips, {args.draws} crops each, area {args.scale[0]}-{args.scale[1]}, {n} frames")
    print(f"views with the shape at least half inside in every frame: {100 * (counts == n).float().mean():.1f}%")
    print(f"  in at least half the frames: {100 * (counts >= n / 2).float().mean():.1f}%")
    print(f"  in fewer than 2 frames (no motion to see): {100 * (counts < 2).float().mean():.1f}%")
    print(f"mean frames inside: {counts.float().mean():.1f} of {n}")


if __name__ == "__main__":
    main()
