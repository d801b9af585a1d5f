"""Recomputation (activation checkpointing) in one place, and the measure of what training keeps.

Every part of composer that trades a second forward pass for memory (frozen backbone blocks inside the
gradient region, TDS-CLIP's side network) calls `recompute`. `kept_for_backward` measures the bytes a
training step holds between its forward and its backward pass: the tensors autograd saves, plus the
inputs each recomputed region keeps, which autograd's saved-tensor hooks do not see (the checkpoint
holds them itself). Benchmarks and tests use it; on a GPU the allocator's peak says the same more
bluntly.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch.utils.checkpoint import checkpoint

_observers: list[Callable[[Callable[..., Any], tuple], None]] = []  # told of every region: (fn, args)


def recompute(fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args), keeping only `args` for the backward pass, where fn runs again."""
    for observe in _observers:
        observe(fn, args)
    return checkpoint(fn, *args, use_reentrant=False)


def kept_for_backward(step: Callable[[], torch.Tensor], module: torch.nn.Module | None = None) -> int:
    """Bytes of the distinct storages kept from the forward of `step()` (which returns the loss) for its
    backward, parameters not counted (they are kept anyway). Runs the backward too."""
    params = {p.untyped_storage().data_ptr() for p in module.parameters()} if module is not None else set()
    kept: dict[int, int] = {}
    held: list[torch.Tensor] = []  # keep every counted tensor alive so no address is reused and miscounted

    def count(t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params and not t.is_meta:
            kept[storage.data_ptr()] = storage.nbytes()
            held.append(t)

    def pack(t: torch.Tensor) -> torch.Tensor:
        count(t)
        return t

    def observe(fn: Callable[..., Any], args: tuple) -> None:
        for a in args:
            if isinstance(a, torch.Tensor):
                count(a)

    _observers.append(observe)
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = step()
    finally:
        _observers.remove(observe)
    loss.backward()
    held.clear()
    return sum(kept.values())
