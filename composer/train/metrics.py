"""Classification metrics from scores: top-1, top-5, mean class accuracy and per-class accuracy."""

from __future__ import annotations

import torch


def classification_metrics(scores: torch.Tensor, labels: torch.Tensor, classes: list[str]) -> dict:
    """scores [N, C], labels [N] -> percentages (top5 only when there are at least 5 classes)."""
    if len(labels) == 0:
        return {"top1": float("nan"), "count": 0}
    top = scores.topk(min(5, scores.shape[1]), dim=1).indices
    correct1 = top[:, 0] == labels
    per_class = {}
    for c, name in enumerate(classes):
        mask = labels == c
        if mask.any():
            per_class[name] = 100.0 * correct1[mask].float().mean().item()
    out = {"top1": 100.0 * correct1.float().mean().item(), "count": int(len(labels)),
           "mean_class": sum(per_class.values()) / max(1, len(per_class)), "per_class": per_class}
    if scores.shape[1] >= 5:
        out["top5"] = 100.0 * (top == labels[:, None]).any(dim=1).float().mean().item()
    return out
