"""Classification metrics from scores: top-1, top-5, mean class accuracy and per-class accuracy."""

from __future__ import annotations

import torch


def classification_metrics(scores: torch.Tensor, labels: torch.Tensor, classes: list[str],
                           failed: torch.Tensor | None = None) -> dict:
    """scores [N, C], labels [N] -> percentages (top5 only when there are at least 5 classes).

    `failed` [F]: the labels of test videos that could not be scored (undecodable): they count as wrong, so
    a broken test video lowers accuracy instead of leaving the denominator ("failed" says how many)."""
    failed = torch.zeros(0, dtype=torch.long) if failed is None else failed
    if len(labels) + len(failed) == 0:
        return {"top1": float("nan"), "count": 0, "failed": 0}
    top = scores.topk(min(5, scores.shape[1]), dim=1).indices
    top = torch.cat([top, torch.full((len(failed), top.shape[1]), -1, dtype=top.dtype)])
    labels = torch.cat([labels, failed.to(labels.dtype)])
    correct1 = top[:, 0] == labels
    per_class = {}
    for c, name in enumerate(classes):
        mask = labels == c
        if mask.any():
            per_class[name] = 100.0 * correct1[mask].float().mean().item()
    out = {"top1": 100.0 * correct1.float().mean().item(), "count": int(len(labels)), "failed": len(failed),
           "mean_class": sum(per_class.values()) / max(1, len(per_class)), "per_class": per_class}
    if scores.shape[1] >= 5:
        out["top5"] = 100.0 * (top == labels[:, None]).any(dim=1).float().mean().item()
    return out
