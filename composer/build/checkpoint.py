"""Trainable-only checkpoints: safetensors plus a fingerprint of the model they belong to.

Only what trains is saved (adapters, prompts, heads, unfrozen backbone weights), so a checkpoint of an
adapter spec is megabytes, not the backbone's gigabytes. The fingerprint hashes the backbones
(family, size, weights) and the names and shapes of the trainable tensors; loading onto a model with a
different fingerprint is refused with the list of differences. Files are written atomically
(temporary file, fsync, rename), so an interrupted save never destroys the previous checkpoint, and
nothing is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from composer.errors import SpecError


def structure(model, tensors: dict[str, torch.Tensor] | None = None) -> dict[str, Any]:
    """What a checkpoint must agree with: backbones and the trainable tensors' names and shapes (of
    `tensors` when given: the whole tensors gathered from a sharded model)."""
    backbones = {}
    for name, backbone in model.backbones.items():
        r = backbone.request
        backbones[name] = {"family": backbone.family, "size": r.size, "tiny": r.tiny, "weights": r.weights,
                           "image_size": r.image_size}
    shapes = {n: list(p.shape) for n, p in (model.trainable_state() if tensors is None else tensors).items()}
    return {"backbones": backbones, "trainable": shapes}


def fingerprint(model, tensors: dict[str, torch.Tensor] | None = None) -> str:
    return hashlib.sha256(json.dumps(structure(model, tensors), sort_keys=True).encode()).hexdigest()[:16]


def atomic_write(path: Path, write) -> None:
    """Call write(tmp_path), fsync it, then rename over `path` (same directory, so the rename is atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_trainable(model, path: str | Path, meta: dict[str, Any] | None = None,
                   tensors: dict[str, torch.Tensor] | None = None) -> None:
    """`tensors`: the trainable tensors when the model does not hold them whole (FSDP shards)."""
    tensors = {n: p.detach().to("cpu").contiguous()
               for n, p in (model.trainable_state() if tensors is None else tensors).items()}
    header = {"fingerprint": fingerprint(model, tensors), "structure": json.dumps(structure(model, tensors)),
              "composer": json.dumps(meta or {})}
    atomic_write(Path(path), lambda tmp: save_file(tensors, tmp, metadata=header))


def _differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    lines = []
    for name in sorted(set(saved["backbones"]) | set(current["backbones"])):
        a, b = saved["backbones"].get(name), current["backbones"].get(name)
        if a != b:
            lines.append(f"backbone {name}: checkpoint has {a}, model has {b}")
    s, c = saved["trainable"], current["trainable"]
    missing = sorted(set(c) - set(s))
    extra = sorted(set(s) - set(c))
    shapes = sorted(n for n in set(s) & set(c) if s[n] != c[n])
    for title, names in (("missing in the checkpoint", missing), ("not in the model", extra)):
        if names:
            lines.append(f"{len(names)} trainable tensor(s) {title}: {', '.join(names[:5])}"
                         + (" ..." if len(names) > 5 else ""))
    for n in shapes[:5]:
        lines.append(f"{n}: checkpoint {s[n]}, model {c[n]}")
    return lines


def read_meta(path: str | Path) -> dict[str, Any]:
    with safe_open(str(path), framework="pt") as f:
        header = f.metadata() or {}
    return json.loads(header.get("composer", "{}"))


def load_trainable(model, path: str | Path) -> dict[str, Any]:
    """Load a trainable-only checkpoint; refuse one made for a different model. Returns its metadata."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # a truncated or foreign file
        raise SpecError(f"{path} is not a readable composer checkpoint ({type(e).__name__}: {e})") from None
    if "fingerprint" not in header:
        raise SpecError(f"{path} is not a composer checkpoint (no fingerprint in its header)")
    if header["fingerprint"] != fingerprint(model):
        diffs = _differences(json.loads(header["structure"]), structure(model))
        raise SpecError(f"{path} was saved from a different model; refusing to load it",
                        hint="; ".join(diffs) or "the fingerprints differ")
    params = model.trainable_state()
    with torch.no_grad():
        for name, value in tensors.items():
            params[name].copy_(value.to(params[name].device, params[name].dtype))
    return json.loads(header.get("composer", "{}"))
