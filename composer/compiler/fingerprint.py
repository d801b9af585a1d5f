"""A built model's identity: its backbones (family, size, weights, input size) and the names and shapes of its
trainable tensors, hashed. A checkpoint carries it and is loaded only onto a model with the same one
(composer/rundir/checkpoint.py); `composer build --json` reports it; cached features are keyed on it."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch

from composer.spec.digest import spec_digest
from composer.version import composer_version


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


def identity(model, tensors: dict[str, torch.Tensor] | None = None) -> dict[str, str]:
    """What every safetensors file composer writes carries in its metadata, so the file says what it belongs
    to without its run directory: the composer version, the spec's name and digest (composer/spec/digest.py)
    and the model's fingerprint (`composer inspect FILE` prints them)."""
    return {"composer_version": composer_version(), "spec": model.spec.name, "spec_digest": spec_digest(model.spec),
            "fingerprint": fingerprint(model, tensors)}
