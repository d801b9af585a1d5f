"""AdamW (or SGD) with per-part learning rates, and linear warm-up followed by cosine decay per step.

Parameter groups follow the spec's parts: `train.groups.<component or backbone>` may set `lr` and
`weight_decay`. As usual for transformers, biases, norms, embeddings and prompts (tensors of one or
zero dimensions... and prompt/position tables) get no weight decay.
"""

from __future__ import annotations

import math

import torch

NO_DECAY_HINTS = ("bias", "norm", "ln_", "position", "prompt", "embedding", "class_embedding", "gate", "log_")


def _no_decay(name: str, param: torch.Tensor) -> bool:
    return param.ndim <= 1 or any(h in name.lower() for h in NO_DECAY_HINTS)


def param_groups(model, train, lr: float, parts: set[str]) -> list[dict]:
    """Groups by (part, decay or not) for the trainable parameters of `parts`."""
    groups: dict[tuple[str, bool], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        part = model.parameter_owner(name)
        if part not in parts:
            continue
        override = train.groups.get(part)
        decay = not _no_decay(name, param)
        key = (part, decay)
        if key not in groups:
            wd = override.weight_decay if override and override.weight_decay is not None else train.weight_decay
            groups[key] = {"params": [], "lr": override.lr if override and override.lr is not None else lr,
                           "weight_decay": wd if decay else 0.0, "name": part if decay else f"{part}.no_decay"}
        groups[key]["params"].append(param)
    return list(groups.values())


def make_optimizer(model, train, lr: float, parts: set[str]) -> torch.optim.Optimizer:
    groups = param_groups(model, train, lr, parts)
    if not groups:
        raise ValueError("nothing to optimise")
    if train.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=train.momentum)
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(train.betas))


def make_schedule(optimizer, schedule: str, warmup_steps: int, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Multiplier of each group's lr: linear warm-up, then cosine to zero (or constant / linear)."""

    def factor(step: int) -> float:
        if warmup_steps and step < warmup_steps:
            return (step + 1) / warmup_steps
        if schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return 0.5 * (1 + math.cos(math.pi * progress)) if schedule == "cosine" else 1.0 - progress

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
