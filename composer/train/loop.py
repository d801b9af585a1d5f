"""One epoch of training through an Accelerator (one process or many), and the loaders it and evaluation use."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object
from torch.utils.data import DataLoader, Sampler

from composer.data.clips import on_device
from composer.data.protocols import Part
from composer.errors import DataError
from composer.rundir.resume import EpochPosition
from composer.spec.ir import ClassesInput, LabelInput, VideoInput
from composer.train.preempt import Preempted, any_process


class LossNotFinite(Exception):
    """The loss became NaN or infinite: the run stops, the last good checkpoint stays."""


@dataclass
class Settings:
    batch_size: int  # per process: the global batch divided by the number of processes
    workers: int
    grad_clip: float | None = None
    max_steps: int | None = None  # stop an epoch early (quick checks)
    save_every: int | None = None  # save the run's state every N optimiser steps (besides epoch ends)
    eval_batch_size: int | None = None  # clips (views included) per evaluation forward; default: batch_size
    prefetch: int = 4  # batches each worker keeps ready

    @property
    def eval_batch(self) -> int:
        return self.eval_batch_size or self.batch_size


def inputs(spec, video: torch.Tensor | None, labels: torch.Tensor | None, classes: list[str]) -> dict[str, Any]:
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


class EpochOrder(Sampler):
    """The epoch's shuffled order as (epoch, clip) pairs, the same on every process (Accelerate shards its
    batches), cut to `limit` clips for --max-steps so that accumulation still ends the epoch with an optimiser
    step. `place` says which epoch comes next and how many clips of it a resumed epoch has already trained on
    (a whole number of global batches). The epoch travels with each index, so the loader's persistent workers
    seed every clip by its epoch without being told. (Not named set_epoch: Accelerate calls that with its own
    count of passes over the loader, which a resumed run does not share.)"""

    def __init__(self, size: int, seed: int, limit: int | None = None) -> None:
        self.size, self.seed, self.limit = size, seed, limit
        self.epoch, self.start = 0, 0

    def place(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def __len__(self) -> int:
        return max(0, (self.size if self.limit is None else min(self.size, self.limit)) - self.start)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = torch.randperm(self.size, generator=_generator(self.seed * 1000 + self.epoch))
        return iter([(self.epoch, i) for i in order[self.start:self.start + len(self)].tolist()])


def _loader(dataset, batch_size: int, settings: Settings, accelerator: Accelerator, seed: int,
            sampler: Sampler | None = None) -> DataLoader:
    """A prepared DataLoader whose workers live as long as it does, with pinned batches for a CUDA device.
    It has its own generator, so starting it draws nothing from torch's global one: a resumed epoch leaves
    that stream where an uninterrupted one would (dropout and the model's own randomness follow it)."""
    workers = settings.workers
    data = DataLoader(dataset, batch_size=batch_size, sampler=sampler, shuffle=False, num_workers=workers,
                      collate_fn=dataset.collate, persistent_workers=workers > 0,
                      pin_memory=accelerator.device.type == "cuda",
                      prefetch_factor=settings.prefetch if workers > 0 else None,
                      generator=_generator(seed))
    return accelerator.prepare_data_loader(data)


def _generator(seed: int) -> torch.Generator:
    """A generator from a derived seed (the run's seed x 1000 + epoch), which for a seed near the 64-bit limit a
    spec allows passes the range torch takes: it is then reduced modulo 2^64. A seed torch takes is used as it
    is, so every seed that worked before gives the same order."""
    return torch.Generator().manual_seed(seed if -2**63 <= seed < 2**64 else seed % 2**64)


class TrainLoader:
    """The training batches of a stage: one DataLoader (one set of worker processes) for all its epochs."""

    def __init__(self, dataset, settings: Settings, accelerator: Accelerator, seed: int) -> None:
        self.dataset, self.settings, self.world = dataset, settings, accelerator.num_processes
        limit = settings.max_steps * settings.batch_size * self.world if settings.max_steps else None
        self.order = EpochOrder(len(dataset), seed, limit)
        self.data = _loader(dataset, settings.batch_size, settings, accelerator, seed * 1000, self.order)

    def epoch(self, epoch: int, start_batch: int = 0) -> DataLoader:
        """The epoch's batches from `start_batch` (global batches) on."""
        self.order.place(epoch, start_batch * self.settings.batch_size * self.world)
        return self.data


def eval_loader(dataset, settings: Settings, accelerator: Accelerator, views: int) -> DataLoader:
    """Test clips in batches of at most the evaluation batch size counted in views (at least one clip);
    keep the loader to reuse its workers for every evaluation."""
    return _loader(dataset, max(1, settings.eval_batch // views), settings, accelerator, 0)


@dataclass
class EpochResult:
    loss: float
    clips: int
    seconds: float
    steps: int  # optimiser steps taken (the run's global step grows by this)
    bad: list[str] = field(default_factory=list)
    skipped: int = 0  # clips that could not be loaded, all ranks (a video bad in two epochs counts twice)


def _check_finite(accelerator: Accelerator, sums: torch.Tensor, epoch: int, step: int) -> torch.Tensor:
    """All ranks agree (one reduce of device tensors) whether any loss is NaN or infinite; returns the
    summed [non-finite, clips, loss * clips, each named loss * clips] over all ranks."""
    total = accelerator.reduce(sums, "sum")
    if total[0].item() > 0:
        raise LossNotFinite(f"the loss is {total[2].item() / max(1.0, total[1].item())} at epoch {epoch + 1}, "
                            f"step {step + 1}")
    return total


def _agree(accelerator: Accelerator, batch: dict[str, Any], placeholder: Callable[[], dict[str, Any]]
           ) -> tuple[dict[str, Any] | None, int, int]:
    """Every process takes part in every step, or none does: a process whose batch holds no loadable clip
    (all undecodable) would otherwise skip its forward and backward while the others wait for it in DDP's
    gradient all-reduce, for ever. The processes sum their good and bad clip counts first; when no process
    has a clip the step is skipped on all of them, else a process without one runs `placeholder()` (a
    zero-weight stand-in batch). Returns (the batch to run or None, global good clips, global bad clips)."""
    good, bad = (len(batch["label"]) if "label" in batch else 0), len(batch["bad"])
    if accelerator.num_processes == 1:
        return (batch if good else None), good, bad
    counts = accelerator.reduce(torch.tensor([good, bad], device=accelerator.device), "sum").tolist()
    if counts[0] == 0:
        return None, 0, counts[1]
    return (batch if good else placeholder() | {"placeholder": True}), counts[0], counts[1]


def train_epoch(accelerator: Accelerator, net, spec, part: Part, loader: TrainLoader, optimizer, scheduler,
                losses: dict[str, float] | None, settings: Settings, epoch: int, global_step: int = 0,
                on_step: Callable[[int, float, int, float], None] | None = None, position: EpochPosition | None = None,
                forward: Callable[..., dict[str, Any]] | None = None, stop: Callable[[], bool] | None = None,
                on_save: Callable[[EpochPosition], None] | None = None) -> EpochResult:
    """`net` is the prepared model (in training mode), `forward` what runs it (default: `net`; a compiled
    version). `global_step`: the run's optimiser step when the epoch started; `position`: where a resumed epoch
    continues. Logs to the trackers every optimiser step; `on_step(batch, loss, clips, seconds)` follows every
    batch; `on_save` and `stop` are read after each optimiser step (`_save_or_stop`)."""
    forward, position = forward or net, position or EpochPosition()
    data = loader.epoch(epoch, position.batches)
    names = [n for n, w in (spec.losses if losses is None else losses).items() if w]
    params = [p for g in optimizer.param_groups for p in g["params"]]
    device, world = accelerator.device, accelerator.num_processes
    window = torch.zeros(3 + len(names), device=device)  # sums over the accumulation window, all ranks
    total, count, steps, bad, skipped = position.loss_sum, position.clips, position.steps, list(position.bad), \
        position.skipped
    start, last = time.perf_counter(), position.batches + len(data)
    for step, batch in enumerate(data, start=position.batches):
        bad += batch["bad"]
        batch, clips, lost = _agree(accelerator, batch, lambda: loader.dataset.collate([loader.dataset.placeholder()]))
        skipped += lost
        if batch is None:
            continue
        labels = batch["label"].to(device, non_blocking=True)
        n = 0 if "placeholder" in batch else len(labels)  # a placeholder batch weighs nothing
        with accelerator.accumulate(net):
            out = forward(_given(spec, batch, labels, device, part.classes), outputs=["loss"], losses=losses)
            summed = _check_finite(accelerator, _sums(out, names, n, device), epoch, step)
            window += summed
            accelerator.backward(out["loss"] * (n * world / clips) if world > 1 and n * world != clips
                                 else out["loss"])  # each process's mean weighed by its share of the step's clips
            stepped, grad_norm = _optimizer_step(accelerator, optimizer, scheduler, params, settings.grad_clip)
            if stepped:
                steps += 1
                _log_step(accelerator, optimizer, window, names, grad_norm, count + n, start, global_step + steps)
                window.zero_()
            optimizer.zero_grad(set_to_none=True)
        total += summed[2].item()
        count += int(summed[1].item())
        if on_step is not None:
            on_step(step + 1, total / max(1, count), count, time.perf_counter() - start)
        if stepped and (on_save is not None or stop is not None):
            _save_or_stop(accelerator, settings, lambda: EpochPosition(step + 1, steps, total, count, bad[:], skipped),
                          global_step + steps, step + 1 == last, on_save, stop)
    seconds = time.perf_counter() - start
    bad = sorted(set(gather_object(bad))) if world > 1 else bad
    if count == 0:
        raise DataError("no clip could be loaded in this epoch" + (f"; bad videos: {bad[:3]}" if bad else ""))
    return EpochResult(total / count, count, seconds, steps, bad, skipped)


def _given(spec, batch: dict[str, Any], labels: torch.Tensor, device, classes: list[str]) -> dict[str, Any]:
    """The step's inputs; cached frozen features stand in for the video when the loader gives them."""
    if "features" in batch:
        return inputs(spec, None, labels, classes) | {k: v.to(device) for k, v in batch["features"].items()}
    return inputs(spec, on_device(batch, device), labels, classes)


def _sums(out: dict[str, torch.Tensor], names: list[str], n: int, device) -> torch.Tensor:
    """This process's [non-finite, clips, loss * clips, each named loss * clips] for the step."""
    loss = out["loss"].detach()
    return torch.stack([(~torch.isfinite(loss)).float(), torch.tensor(float(n), device=device), loss.float() * n]
                       + [out[k].detach().float() * n for k in names])


def _optimizer_step(accelerator: Accelerator, optimizer, scheduler, params: list, grad_clip: float | None
                    ) -> tuple[bool, torch.Tensor | None]:
    """The optimiser's step; when gradients synchronise (the end of an accumulation window) the gradients are
    clipped first and the schedule steps after. Returns whether they did, and the total norm before clipping
    (clipping at infinity leaves the gradients as they are)."""
    synced = accelerator.sync_gradients
    grad_norm = accelerator.clip_grad_norm_(params, grad_clip or math.inf) if synced else None
    optimizer.step()
    if synced:
        scheduler.step()
    return synced, grad_norm


def _save_or_stop(accelerator: Accelerator, settings: Settings, at: Callable[[], EpochPosition], run_step: int,
                  last: bool, on_save: Callable[[EpochPosition], None] | None, stop: Callable[[], bool] | None) -> None:
    """After an optimiser step: when any process was signalled, save the position `at()` and raise Preempted;
    else save when --save-every is due (not after the epoch's last batch: the epoch's end saves that)."""
    if stop is not None and any_process(accelerator, stop()):
        if on_save is not None:
            on_save(at())
        raise Preempted(f"stopped on a signal after optimiser step {run_step}")
    if on_save is not None and settings.save_every and run_step % settings.save_every == 0 and not last:
        on_save(at())


def _log_step(accelerator: Accelerator, optimizer, window: torch.Tensor, names: list[str], grad_norm, clips: int,
              start: float, step: int) -> None:
    """What the trackers get on every optimiser step (means over the clips of the accumulation window)."""
    values = (window[2:] / window[1].clamp(min=1)).tolist()
    record = {"loss": values[0]} | {f"loss/{n}": v for n, v in zip(names, values[1:])}
    record |= {f"lr/{g.get('name', i)}": g["lr"] for i, g in enumerate(optimizer.param_groups)}
    record["grad_norm"] = float(grad_norm)
    record["clips_per_s"] = clips / max(time.perf_counter() - start, 1e-9)
    accelerator.log(record, step=step)
