"""Before the first training step: the run's first batch must give a finite loss and unsaturated logits.

A loss that is NaN or infinite on the first batch poisons every weight its gradient reaches; logits whose
softmax puts all its mass on one class for every clip leave the cross-entropy nothing to work with but the
saturated tail. Either way the run would train on silently and learn nothing, so it is refused before the
first step, naming the flow step responsible: for a NaN, the first step (in execution order) whose output is
not finite; for saturated logits, the step that makes the predicted scores. The check is one forward pass of
the first batch, in evaluation mode, without gradients, drawing nothing from the random generators (a run
with the check trains exactly as one without it).
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import torch

from composer.data.clips import ClipConfig, ClipDataset, collate, on_device
from composer.data.protocols import Part
from composer.errors import SpecError
from composer.train.loop import EpochOrder, inputs

SATURATED = 1e-3  # nats: below this entropy a clip's softmax gives all but about 1e-4 of its mass to one class


def loss_terms(spec) -> list[str]:
    """Every loss term some stage trains on (the spec's losses, or each stage's)."""
    terms = [n for n, w in spec.losses.items() if w]
    for stage in (spec.stages or {}).values():
        terms += [n for n, w in (stage.losses or {}).items() if w and n not in terms]
    return terms


def first_batch(part: Part, clip: ClipConfig, seed: int, batch_size: int, device: Any) -> dict[str, Any] | None:
    """The clips and labels of the run's first training batch (epoch 0's order, the training transforms), or
    None when none of them can be decoded (the epoch reports bad videos itself)."""
    dataset = ClipDataset(part.items, clip, train=True, seed=seed)
    order = EpochOrder(len(dataset), seed)
    batch = collate([dataset[key] for key in list(order)[:batch_size]])
    if "video" not in batch:
        return None
    return {"video": on_device(batch, device), "label": batch["label"].to(device)}


def _step(model, tensor: str) -> tuple[str, Any]:
    """The flow step that makes `tensor`, in words, and where the spec writes it."""
    node = model.graph.producer.get(tensor)
    if node is None:
        return f"the input `{tensor}`", None
    if node.startswith("r:"):
        run = model.graph.runs[node[2:]]
        attached = sorted({a.name for a in model.graph.attachments_of(run.backbone, run.tower)}) if run.active else []
        parts = f"; attached: {', '.join(attached)}" if attached else ""
        return f"the tower run {run.backbone}.{run.tower} (`{tensor}`{parts})", run.loc
    call = model.graph.calls[node[2:]]
    return f"component `{call.component}` ({call.kind.name}, making `{tensor}`)", call.loc


def _first_not_finite(model, values: dict[str, Any], outputs: list[str]) -> str | None:
    """The first tensor, in execution order, that holds a NaN or an infinity."""
    graph = model.graph
    for node in model.needed(outputs):
        made = [node[2:]] if node.startswith("c:") else [*graph.runs[node[2:]].outputs, *graph.runs[node[2:]].taps]
        for tensor in made:
            value = values.get(tensor)
            if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all():
                return tensor
    return None


def check_first_batch(model, given: dict[str, Any], autocast=None) -> None:
    """Raise a SpecError located at the responsible flow step when the first batch's loss is not finite, or
    when the predicted logits are saturated on every clip. `given` is the batch under the spec's input names;
    `autocast` the run's autocast context (its precision is the one training uses)."""
    terms, predict = loss_terms(model.spec), model.graph.predict
    outputs = terms + ([predict] if predict else [])
    if not outputs:
        return
    mode = model.training
    device = next((v.device for v in given.values() if isinstance(v, torch.Tensor)), torch.device("cpu"))
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad(), \
                (autocast or contextlib.nullcontext)():
            model.train(False)
            values = model(given, outputs=outputs)
    finally:
        model.train(mode)
        model.clear_cache()
    bad = [t for t in terms if not torch.isfinite(values[t]).all()]
    if bad:
        culprit = _first_not_finite(model, values, outputs) or bad[0]
        where, loc = _step(model, culprit)
        raise SpecError(f"the loss {', '.join(f'`{t}` is {values[t].float().mean().item()}' for t in bad)} on the "
                        f"first batch, before any training: the first value that is not finite comes from {where}",
                        loc, hint="training would not learn from it; check that part's parameters and its inputs")
    if predict is not None:
        logits = values[predict].float()
        entropy = -(logits.softmax(-1) * logits.log_softmax(-1)).nan_to_num().sum(-1)
        if logits.shape[-1] > 1 and bool((entropy < SATURATED).all()):
            where, loc = _step(model, predict)
            raise SpecError(f"the scores `{predict}` are saturated on every clip of the first batch, before any "
                            f"training (softmax entropy at most {entropy.max().item():.2g} nats, where a uniform "
                            f"guess has ln {logits.shape[-1]} = {math.log(logits.shape[-1]):.2f}): they come from "
                            f"{where}", loc,
                            hint="a softmax at 0 or 1 on every clip gives the loss little to learn from; lower "
                            "that part's scale, or check that its inputs are not all alike")


def preflight(model, spec, part: Part, clip: ClipConfig, seed: int, batch_size: int, device: Any,
              autocast=None) -> None:
    """The check on the run's first training batch (nothing to check for a spec that trains nothing)."""
    if not model.trainable_parts:
        return
    batch = first_batch(part, clip, seed, batch_size, device)
    if batch is not None:
        check_first_batch(model, inputs(spec, batch["video"], batch["label"], part.classes), autocast)
