"""The built-in demo set: small real mp4 clips of synthetic motion, generated once and cached.

Eight classes defined by motion only: move left / right, move up / down, rotate clockwise /
anticlockwise, approach / recede. Each pair is the same kind of clip played backwards, so the two
classes of a pair have exactly the same distribution of frames; a model that averages frames (blind to
their order) cannot tell them apart better than chance within a pair, while a model that sees time
can. Clips have 17 frames so that the frames sampled at test time (segment centres) are the same set
for a clip and its reversal: a frame average sees exactly the same frames. Every clip has its own
textured background, shape, colour, start and speed.

The set also ships what specs ask of a dataset: per-class descriptions (MSTA), a Chinese label
dictionary (the dual-text model) and the answers to FTP's four prompts. Horizontal flips are off: they
would turn "move left" into "move right".
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import torch

VERSION = "demo-v5"  # v5: lossless, so every machine has the same set; v4: FTP answers differ per class in every tier
# H.264 in RGB at constant quality 0 is lossless: each file decodes to exactly the frames rendered from the seed. The
# default lossy encoding is not reproducible: with the same frames, FFmpeg 5.1's x264 wrote different files from one
# process to the next (pixels differing by up to 59 of 255 in 40 of the 256 clips), so every number on the demo
# set could change with the machine, or with the run that generated the set.
ENCODING = {"codec": "libx264rgb", "pixel_format": "rgb24", "crf": 0}
SIZE, FRAMES, FPS = 64, 17, 8  # 17 frames: the test-time frame positions are symmetric under reversal
TRAIN_PER_CLASS, TEST_PER_CLASS = 24, 16
PAIRS = [("move right", "move left"), ("move down", "move up"), ("rotate clockwise", "rotate anticlockwise"),
         ("approach", "recede")]
CLASSES = [name for pair in PAIRS for name in pair]
FILES = ("descriptions", "ftp_answers", "chinese_labels")  # <name>.json beside the lists, for specs' @name
CHINESE = {"move right": "向右移动", "move left": "向左移动", "move down": "向下移动", "move up": "向上移动",
           "rotate clockwise": "顺时针旋转", "rotate anticlockwise": "逆时针旋转", "approach": "靠近", "recede": "远离"}


def default_root() -> Path:
    return Path(os.environ.get("COMPOSER_CACHE", Path.home() / ".cache" / "composer")) / VERSION


def _background(g: torch.Generator) -> torch.Tensor:
    """A smooth random colour field with faint stripes: [3, S, S] in [0, 1]."""
    coarse = torch.rand(3, 3, 3, generator=g)
    field = torch.nn.functional.interpolate(coarse[None], size=(SIZE, SIZE), mode="bilinear", align_corners=False)[0]
    angle = torch.rand(1, generator=g).item() * math.pi
    y, x = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    stripes = 0.5 + 0.5 * torch.sin((x * math.cos(angle) + y * math.sin(angle)) * 0.5)
    return (0.4 + 0.2 * field + 0.05 * stripes).clamp(0, 1)


def _shape_mask(kind: str, cx: float, cy: float, radius: float, angle: float) -> torch.Tensor:
    """[S, S] bool mask of a filled shape; triangles and squares show rotation, circles do not."""
    y, x = torch.meshgrid(torch.arange(SIZE, dtype=torch.float), torch.arange(SIZE, dtype=torch.float),
                          indexing="ij")
    if kind == "circle":
        return (x - cx) ** 2 + (y - cy) ** 2 <= radius ** 2
    corners = 3 if kind == "triangle" else 4
    # an arrow-like triangle (one long vertex) so rotation is unambiguous
    vertices = []
    for k in range(corners):
        a = angle + 2 * math.pi * k / corners
        r = radius * (1.4 if (kind == "triangle" and k == 0) else 1.0)
        vertices.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    inside = torch.ones(SIZE, SIZE, dtype=torch.bool)
    for (x0, y0), (x1, y1) in zip(vertices, vertices[1:] + vertices[:1]):
        inside &= (x1 - x0) * (y - y0) - (y1 - y0) * (x - x0) >= 0
    return inside


def render(motion: str, g: torch.Generator) -> torch.Tensor:
    """One clip of `motion` played forwards: uint8 [T, 3, S, S]."""
    background = _background(g)
    colour = torch.rand(3, generator=g)
    colour = torch.where(background.mean((1, 2)) > 0.5, colour * 0.3, 0.7 + colour * 0.3)
    kind = ["triangle", "square"][int(torch.randint(2, (1,), generator=g))] if "rotate" in motion else \
        ["triangle", "square", "circle"][int(torch.randint(3, (1,), generator=g))]
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(1, generator=g).item()  # noqa: E731
    cx, cy, radius, angle = u(28, 36), u(28, 36), u(9, 12), u(0, 2 * math.pi)
    travel, spin, grow = u(30, 38), u(2.5, 3.5), u(2.2, 3.0)
    frames = []
    for t in range(FRAMES):
        s = t / (FRAMES - 1) - 0.5  # -0.5 .. 0.5
        x, y, r, a = cx, cy, radius, angle
        if motion == "move right":
            x = cx + travel * s
        elif motion == "move down":
            y = cy + travel * s
        elif motion == "rotate clockwise":
            a = angle + spin * s
        elif motion == "approach":
            r = radius * grow ** s
        mask = _shape_mask(kind, x, y, r, a)
        frame = torch.where(mask, colour[:, None, None], background)
        frames.append(frame)
    return (torch.stack(frames) * 255).round().to(torch.uint8)


DIRECTION = {"move right": "to the right", "move left": "to the left", "move down": "downwards", "move up": "upwards",
             "rotate clockwise": "clockwise", "rotate anticlockwise": "anticlockwise",
             "approach": "towards the camera", "recede": "away from the camera"}


def _descriptions(name: str) -> dict:
    forward = DIRECTION[name]
    return {"spatial": [f"A video about a single coloured shape over a textured background, {name}.",
                        f"A video about a flat shape that moves {forward}.",
                        "A video about a triangle, a square or a circle on a smooth colour field.",
                        f"A video about {name} in a small synthetic scene."],
            "temporal": [f"A video about a shape that starts still and then goes {forward}.",
                         f"A video about the shape moving {forward} over sixteen frames.",
                         f"A video about {name}: first one position, then the next, steadily.",
                         "A video about a motion that keeps the same direction from start to end."]}


def _answers(name: str) -> dict:
    """FTP's four tiers, each different for every class, as a VLM's answers about real actions are. (The
    tiers "components" and "context" were once the same sentence for all eight classes: their InfoNCE then has
    identical targets, no gradient, and two of FTP's four processors learnt nothing.)"""
    forward = DIRECTION[name]
    return {"category": f"{name}", "components": f"a coloured shape whose leading edge points {forward}",
            "description": _descriptions(name)["temporal"][1],
            "context": f"a synthetic scene whose only change is a shape going {forward}"}


def generate(root: Path, seed: int = 0) -> None:
    """Write the demo set to `root` (atomically: into a temporary folder, renamed when complete). Each file is
    decoded back and must give exactly the frames it was made from."""
    from torchcodec.decoders import VideoDecoder  # lazy: torchcodec loads FFmpeg's libraries
    from torchcodec.encoders import VideoEncoder  # lazy: as above

    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        g = torch.Generator().manual_seed(seed)
        lines: dict[str, list[str]] = {"train": [], "test": []}
        for split, count in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
            for forward, backward in PAIRS:
                for name, reverse in ((forward, False), (backward, True)):
                    folder = tmp / "videos" / split / name.replace(" ", "_")
                    folder.mkdir(parents=True, exist_ok=True)
                    for i in range(count):
                        clip = render(forward, g)
                        clip = clip.flip(0) if reverse else clip
                        path = folder / f"{i:03d}.mp4"
                        VideoEncoder(clip, frame_rate=FPS).to_file(str(path), **ENCODING)
                        if not torch.equal(VideoDecoder(str(path))[:], clip):
                            raise RuntimeError(f"the demo clip {path.name} does not decode to the frames it was made "
                                               "from: this FFmpeg's lossless H.264 (libx264rgb) is not lossless")
                        lines[split].append(f"{path.relative_to(tmp)} {CLASSES.index(name)}")
        for split, rows in lines.items():
            (tmp / f"{split}.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
        (tmp / "classes.txt").write_text("\n".join(CLASSES) + "\n", encoding="utf-8")
        (tmp / "descriptions.json").write_text(json.dumps({c: _descriptions(c) for c in CLASSES}, indent=1))
        (tmp / "ftp_answers.json").write_text(json.dumps({c: _answers(c) for c in CLASSES}, indent=1))
        (tmp / "chinese_labels.json").write_text(json.dumps(CHINESE, ensure_ascii=False, indent=1), encoding="utf-8")
        (tmp / "README.txt").write_text(__doc__ or "", encoding="utf-8")
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def demo_folder(root: Path | None) -> Path:
    """The demo set's folder (`root`, or the cache's), generating the set first if it is not there yet. Its
    index is load_dataset("demo", root): a list layout (composer/data/datasets.py) with FILES beside it."""
    root = Path(root) if root else default_root()
    if not (root / "classes.txt").exists():
        generate(root)
    return root
