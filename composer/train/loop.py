"""One epoch of training and one evaluation pass, on one process or under DDP."""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, Subset

from composer.data.clips import ClipDataset
from composer.data.protocols import Part
from composer.errors import DataError
from composer.spec.ir import ClassesInput, LabelInput, VideoInput
from composer.train.distributed import World, all_agree, gather
from composer.train.metrics import classification_metrics


class LossNotFinite(Exception):
    """The loss became NaN or infinite: the run stops, the last good checkpoint stays."""


@dataclass
class Settings:
    device: str
    precision: str  # bf16, fp16 or fp32 (resolved from auto)
    batch_size: int
    workers: int
    accumulate: int = 1
    grad_clip: float | None = None
    max_steps: int | None = None  # stop an epoch early (quick checks)


def resolve_precision(precision: str, device: str) -> str:
    if precision != "auto":
        return precision
    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp32"


def autocast(settings: Settings):
    if settings.precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if settings.precision == "bf16" else torch.float16
    return torch.autocast(settings.device.split(":")[0], dtype=dtype)


def inputs(spec, video: torch.Tensor, labels: torch.Tensor | None, classes: list[str]) -> dict[str, Any]:
    """The batch under the spec's own input names."""
    out: dict[str, Any] = {}
    for name, inp in spec.inputs.items():
        if isinstance(inp, VideoInput) and video is not None:
            out[name] = video
        elif isinstance(inp, ClassesInput):
            out[name] = classes
        elif isinstance(inp, LabelInput) and labels is not None:
            out[name] = labels
    return out


def loader(dataset: ClipDataset, settings: Settings, world: World, train: bool, seed: int, epoch: int) -> DataLoader:
    if train:
        if world.distributed:
            sampler = DistributedSampler(dataset, world.size, world.rank, shuffle=True, seed=seed)
            sampler.set_epoch(epoch)
        else:
            sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(seed * 1000 + epoch))
        return DataLoader(dataset, batch_size=settings.batch_size, sampler=sampler, num_workers=settings.workers,
                          collate_fn=dataset.collate, drop_last=False, persistent_workers=False)
    shard = Subset(dataset, list(range(world.rank, len(dataset), world.size)))
    return DataLoader(shard, batch_size=settings.batch_size, shuffle=False, num_workers=settings.workers,
                      collate_fn=dataset.collate)


@dataclass
class EpochResult:
    loss: float
    clips: int
    seconds: float
    bad: list[str] = field(default_factory=list)


def train_epoch(model, net, spec, part: Part, dataset: ClipDataset, optimizer, scheduler, scaler, losses, settings,
                world: World, seed: int, epoch: int, progress=None, task=None) -> EpochResult:
    """`net` is what runs the forward (the model, or its DDP wrapper)."""
    model.train()
    dataset.set_epoch(epoch)
    data = loader(dataset, settings, world, True, seed, epoch)
    total, count, clips, bad = 0.0, 0, 0, []
    start = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    steps = len(data) if settings.max_steps is None else min(len(data), settings.max_steps)
    for step, batch in enumerate(data):
        if step >= steps:
            break
        bad += batch["bad"]
        if "label" not in batch:
            continue
        labels = batch["label"].to(settings.device)
        if "features" in batch:  # cached frozen features stand in for the video
            given = inputs(spec, None, labels, part.classes) | {k: v.to(settings.device)
                                                                 for k, v in batch["features"].items()}
        else:
            given = inputs(spec, batch["video"].to(settings.device, non_blocking=True), labels, part.classes)
        with autocast(settings):
            out = net(given, outputs=["loss"], losses=losses)
        loss = out["loss"]
        if not all_agree(bool(torch.isfinite(loss.detach()).item()), world):
            raise LossNotFinite(f"the loss is {loss.item()} at epoch {epoch + 1}, step {step + 1}")
        scaled = loss / settings.accumulate
        (scaler.scale(scaled) if scaler else scaled).backward()
        if (step + 1) % settings.accumulate == 0 or step + 1 == steps:
            if scaler:
                scaler.unscale_(optimizer)
            if settings.grad_clip:
                torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]],
                                               settings.grad_clip)
            if scaler:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        total += loss.item() * len(labels)
        count += len(labels)
        clips += len(labels)
        if progress is not None and task is not None:
            elapsed = time.perf_counter() - start
            progress.update(task, completed=step + 1, total=steps,
                            loss=f"{total / max(1, count):.4f}", speed=f"{clips * world.size / max(elapsed, 1e-9):.1f}")
    seconds = time.perf_counter() - start
    stats = gather((total, count, bad), world)
    total, count = sum(s[0] for s in stats), sum(s[1] for s in stats)
    bad = [b for s in stats for b in s[2]]
    if count == 0:
        raise DataError("no clip could be loaded in this epoch" + (f"; bad videos: {bad[:3]}" if bad else ""))
    return EpochResult(total / count, count, seconds, bad)


@torch.no_grad()
def evaluate(model, spec, part: Part, dataset: ClipDataset, settings: Settings, world: World,
             progress=None, task=None) -> dict[str, Any]:
    """Average the softmax scores of every view of each clip; metrics over the whole part (all ranks)."""
    model.train(False)
    predict = model.graph.predict
    indices, scores, bad = [], [], []
    data = loader(dataset, settings, world, False, 0, 0)
    for step, batch in enumerate(data):
        bad += batch["bad"]
        if "video" in batch:
            video = batch["video"].to(settings.device, non_blocking=True)
            b, v = video.shape[:2]
            with autocast(settings):
                out = model(inputs(spec, video.flatten(0, 1), None, part.classes), outputs=[predict])
            probs = out[predict].float().softmax(-1).view(b, v, -1).mean(1)
            indices.append(batch["index"])
            scores.append(probs.cpu())
        if progress is not None and task is not None:
            progress.update(task, completed=step + 1, total=len(data))
    local = (torch.cat(indices) if indices else torch.zeros(0, dtype=torch.long),
             torch.cat(scores) if scores else torch.zeros(0, len(part.classes)), bad)
    shards = gather(local, world)
    order = torch.cat([s[0] for s in shards])
    all_scores = torch.cat([s[1] for s in shards])
    labels = torch.tensor([dataset.items[i].label for i in order.tolist()], dtype=torch.long)
    metrics = classification_metrics(all_scores, labels, part.classes)
    metrics["bad"] = [b for s in shards for b in s[2]]
    metrics["scores"], metrics["labels"] = all_scores, labels  # for callers that need more than the metrics
    metrics["finite"] = math.isfinite(metrics["top1"]) if metrics["count"] else False
    return metrics
