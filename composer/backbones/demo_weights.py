"""The demo weights: tiny backbones pretrained here on captioned synthetic motion, shipped as package data.

`--weights demo` (with `--size tiny`) loads them through each family's own local-file loader, the code
that loads real checkpoints. benchmarks/pretrain_demo.py writes them and `manifest.json` (the command,
seed, steps, losses, seconds, torch version and each file's SHA-256); docs/demo-weights.md says what
they are and how they differ from the demo task.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

FOLDER = Path(__file__).with_name("demo-weights")
MANIFEST = "manifest.json"
# family -> (the size it was pretrained as, the file)
FILES = {"clip": ("ViT-B/16", "clip-ViT-B-16.safetensors"), "viclip": ("ViT-B/16", "viclip-ViT-B-16.safetensors"),
         "dinov2": ("ViT-B/14", "dinov2-ViT-B-14.safetensors"),
         "videomae": ("ViT-B/16", "videomae-ViT-B-16.safetensors"),
         "chinese_clip": ("RoBERTa-wwm-ext-base", "chinese_clip-RoBERTa-wwm-ext-base.safetensors")}
WEIGHTS_KINDS = ("demo", "random")  # what --weights may say


class NoDemoWeights(ValueError):
    """A family or size without demo weights."""


def manifest(folder: Path | None = None) -> dict:
    path = (folder or FOLDER) / MANIFEST
    if not path.is_file():
        raise NoDemoWeights(f"the demo weights are missing ({path} does not exist); benchmarks/pretrain_demo.py "
                            "writes them")
    return json.loads(path.read_text(encoding="utf-8"))


def manifest_sha256(folder: Path | None = None) -> str:
    """The manifest's hash: it names every file's hash, so it identifies the whole set."""
    return hashlib.sha256(((folder or FOLDER) / MANIFEST).read_bytes()).hexdigest()


def demo_file(family: str, size: str, folder: Path | None = None) -> tuple[Path, dict]:
    """The file and manifest entry of `family` at `size` (a real size name; the weights are its tiny variant)."""
    folder = folder or FOLDER
    entry = manifest(folder)["files"].get(family)
    if entry is None or entry["size"] != size:
        have = ", ".join(f"{f} {e['size']}" for f, e in manifest(folder)["files"].items())
        raise NoDemoWeights(f"there are no demo weights for {family} {size} (there are: {have})")
    return folder / entry["file"], entry
