"""The memory bill of one training step, predicted on the meta device, and the largest batch that fits.

A step holds, at its peak (during the backward pass):
- the weights: every parameter and buffer, by dtype;
- for the trainable parameters: their gradients (same dtype) and the optimizer's state (AdamW: two
  tensors per parameter; SGD with momentum: one). Under autocast the trainable parameters stay fp32
  master weights, so none of this changes with the precision;
- the activations kept for backward: what autograd saves plus the inputs each recomputed region keeps,
  counted exactly as `composer.recompute.kept_for_backward` counts them on a real device, but on the
  meta device (shapes and dtypes, no memory, no compute), so a ViT-L bill takes a second;
- a temporary term, the larger of two: during the backward pass a recomputed region holds its activations
  again while the gradients flow through it (the largest region's re-materialised bytes plus twice the
  largest single saved tensor: the gradient arriving at a block and the one it produces); during the
  forward pass every activation alive at once, whether autograd keeps it or not. A tower that runs
  without gradients keeps nothing for backward, but its forward still holds its input, the working set
  of a block and its outputs: at the forward's peak, minus what is kept anyway, that is the term.

Activations depend on the batch: they are measured at the requested batch size, and the largest batch
that fits uses the fact that kept bytes, the backward's and the forward's transients are each affine in the
batch (checked: exact from 2 clips on; a batch of one can differ by the odd view that shares storage): the
peak is the larger of two affine terms, so each is extrapolated from 2 and 4 clips and the first to reach
the budget decides; a measurement confirms the answer (else a bisection below it finds the largest).

Half precision: autocast has no meta kernels, so `meta_autocast` emulates it as CUDA applies it: the
matmul-like operations (linear, matmul, convolutions, attention) cast their floating inputs to the half
dtype (so they save half tensors, and a half copy of every frozen fp32 weight they use inside the
gradient region), the operations autocast runs in fp32 (norms, softmax, losses) cast to fp32, and the
rest follow their inputs.
"""

from __future__ import annotations

import math
import weakref
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from composer import recompute as recompute_module
from composer.compiler.flops import meta_batch, placeholder_texts
from composer.compiler.memory_sizes import format_bytes
from composer.compiler.precision import HALF

# -- half precision on the meta device
_TO_HALF = {F.linear, torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.Tensor.__rmatmul__,
            torch.mm, torch.Tensor.mm, torch.bmm, torch.Tensor.bmm, torch.addmm, torch.baddbmm, torch.einsum,
            F.conv1d, F.conv2d, F.conv3d, F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d,
            F.scaled_dot_product_attention, F.prelu}
_TO_FLOAT = {F.layer_norm, F.group_norm, F.softmax, F.log_softmax, torch.softmax, torch.log_softmax,
             torch.Tensor.softmax, torch.Tensor.log_softmax, F.cross_entropy, F.nll_loss, F.mse_loss, F.l1_loss,
             F.kl_div, F.binary_cross_entropy_with_logits, F.cosine_similarity, torch.logsumexp,
             torch.Tensor.logsumexp, F.normalize, torch.cumsum, torch.Tensor.cumsum}


def _cast(value: Any, dtype: torch.dtype) -> Any:
    if isinstance(value, torch.Tensor) and value.is_floating_point() and value.dtype != dtype:
        return value.to(dtype)
    if isinstance(value, (list, tuple)):
        return type(value)(_cast(v, dtype) for v in value)
    return value


class _MetaAutocast(TorchFunctionMode):
    def __init__(self, dtype: torch.dtype) -> None:
        super().__init__()
        self.dtype = dtype

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        dtype = self.dtype if func in _TO_HALF else torch.float32 if func in _TO_FLOAT else None
        if dtype is not None:
            args, kwargs = _cast(args, dtype), {k: _cast(v, dtype) for k, v in kwargs.items()}
        return func(*args, **kwargs)


def meta_autocast(precision: str):
    """Autocast's casts for `precision` ('fp32': none), emulated for meta tensors."""
    return _MetaAutocast(HALF[precision]) if precision in HALF else nullcontext()


# -- activations
@dataclass
class Activations:
    kept: int  # bytes kept for backward
    backward: int  # the backward pass's transient bytes on top of them
    forward: int  # the most bytes alive at once during the forward pass (what is kept included)

    @property
    def temporary(self) -> int:
        """The step's transient bytes on top of what is kept: the forward's or the backward's, the larger."""
        return max(self.backward, self.forward - self.kept)


class _Counter:
    """Distinct storages saved for backward, parameters excluded (as kept_for_backward counts them)."""

    def __init__(self, exclude: set[int], follow: Callable[[torch.Tensor], None] | None = None) -> None:
        self.exclude = exclude
        self.follow = follow  # also told of every tensor counted (the forward's live count)
        self.sizes: dict[int, int] = {}
        self.held: list[torch.Tensor] = []  # alive until counted: no StorageImpl address is reused meanwhile

    def count(self, t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage._cdata not in self.exclude:
            self.sizes[storage._cdata] = storage.nbytes()
            self.held.append(t)
            if self.follow is not None:
                self.follow(t)
        return t

    @contextmanager
    def saving(self) -> Iterator[None]:
        with torch.autograd.graph.saved_tensors_hooks(self.count, lambda t: t):
            yield

    @property
    def total(self) -> int:
        return sum(self.sizes.values())


class _Live(TorchDispatchMode):
    """The most bytes of activations alive at once during the forward pass: every storage an operation makes
    (parameters and buffers excluded) counts while any tensor on it lives, whether autograd keeps it (it is
    then preserved) or not (a tower running without gradients frees its block's activations as it goes)."""

    def __init__(self, exclude: set[int]) -> None:
        super().__init__()
        self.exclude = exclude
        self.tensors: dict[int, int] = {}  # storage -> tensors alive on it
        self.sizes: dict[int, int] = {}
        self.seen: dict[int, weakref.ref] = {}  # the tensors followed, by id (their references tell of their end)
        self.now = self.peak = 0
        self.paused = False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not self.paused:
            self.follow(out)
        return out

    def follow(self, out: Any) -> None:
        """Count the tensors in `out` while they live (each once)."""
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and id(t) not in self.seen:
                self._follow(t)

    def _follow(self, t: torch.Tensor) -> None:
        storage = t.untyped_storage()
        key = storage._cdata
        if key in self.exclude:
            return
        if key not in self.tensors:
            self.tensors[key], self.sizes[key] = 0, storage.nbytes()
            self.now += self.sizes[key]
            self.peak = max(self.peak, self.now)
        self.tensors[key] += 1
        ident = id(t)
        self.seen[ident] = weakref.ref(t, lambda _, key=key, ident=ident: self._release(key, ident))

    def _release(self, key: int, ident: int) -> None:
        del self.seen[ident]
        self.tensors[key] -= 1
        if not self.tensors[key]:
            del self.tensors[key]
            self.now -= self.sizes.pop(key)


class _FusedAttention(TorchFunctionMode):
    """A GPU runs attention as one fused kernel (flash, memory-efficient) that never holds the [N, N] scores;
    on the meta device it decomposes into the math path, so the live count follows only its output (what
    autograd saves inside it is still counted: the saved-tensor hook tells the live count too)."""

    def __init__(self, live: _Live) -> None:
        super().__init__()
        self.live = live

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is not F.scaled_dot_product_attention or self.live.paused:
            return func(*args, **kwargs)
        self.live.paused = True
        try:
            out = func(*args, **kwargs)
        finally:
            self.live.paused = False
        self.live.follow(out)
        return out


def _step_loss(model, clips: int, losses: dict[str, float] | None = None) -> torch.Tensor:
    """The training step's forward on the meta device: every node the loss needs, then the weighted sum
    (`losses`: a stage's loss weights; default the spec's)."""
    losses = model.spec.losses if losses is None else losses
    values: dict[str, Any] = meta_batch(model, clips)
    for node in model.needed([n for n, w in losses.items() if w]):
        if node.startswith("c:") and model.graph.types[node[2:]].dtype == "str":
            values[node[2:]] = placeholder_texts(model.graph.types[node[2:]].shape, model.graph.num_classes)
            continue
        values.update(model.run_node(node, values))
    terms = [w * values[n] for n, w in losses.items() if w]
    return torch.stack(terms).sum() if terms else None


def measure_activations(model, clips: int, precision: str = "fp32",
                        losses: dict[str, float] | None = None) -> Activations:
    """Bytes a training step of `clips` clips keeps for backward, and its transient (the larger of the
    forward's and the backward's); `model` is built on the meta device."""
    params = {p.untyped_storage()._cdata for p in model.parameters()}
    live = _Live(params | {b.untyped_storage()._cdata for b in model.buffers()})
    outer = _Counter(params, live.follow)
    regions: list[int] = []

    def observe(fn: Callable[..., Any], args: tuple) -> None:
        for a in args:
            if isinstance(a, torch.Tensor):
                outer.count(a)
        inner = _Counter(params)  # what the region holds again when it is recomputed in the backward pass
        recompute_module._observers.remove(observe)  # a region inside a region is part of it
        live.paused = True  # this extra run prices the backward pass; the forward's own run follows
        try:
            with inner.saving(), torch.enable_grad():
                fn(*args)
        finally:
            recompute_module._observers.append(observe)
            live.paused = False
        regions.append(inner.total)

    was_training = model.training
    model.train()
    recompute_module._observers.append(observe)
    try:
        with outer.saving(), meta_autocast(precision), live, _FusedAttention(live):
            _step_loss(model, clips, losses)
    finally:
        recompute_module._observers.remove(observe)
        model.train(was_training)
    largest = max(outer.sizes.values(), default=0)
    return Activations(kept=outer.total, backward=max(regions, default=0) + 2 * largest, forward=live.peak)


# -- the bill
def _distinct_bytes(tensors) -> dict[str, int]:
    seen: set[int] = set()
    out: dict[str, int] = {}
    for t in tensors:
        storage = t.untyped_storage()
        if storage._cdata in seen:
            continue
        seen.add(storage._cdata)
        name = str(t.dtype).removeprefix("torch.")
        out[name] = out.get(name, 0) + storage.nbytes()
    return out


def optimizer_states(model) -> int:
    """Tensors the spec's optimizer keeps per trainable parameter: AdamW two, SGD one with momentum."""
    train = model.spec.train
    return 2 if train.optimizer == "adamw" else (1 if train.momentum else 0)


@dataclass
class MemoryBill:
    batch_size: int
    precision: str
    weights_by_dtype: dict[str, int]
    trainable: int  # bytes of the trainable parameters (fp32 master weights; part of `weights`)
    gradients: int
    optimizer: int
    activations: int  # kept for backward
    temporary: int

    @property
    def weights(self) -> int:
        return sum(self.weights_by_dtype.values())

    @property
    def static(self) -> int:
        """What does not depend on the batch."""
        return self.weights + self.gradients + self.optimizer

    @property
    def peak(self) -> int:
        return self.static + self.activations + self.temporary

    def as_json(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size, "precision": self.precision, "weights": self.weights,
                "weights_by_dtype": self.weights_by_dtype, "trainable": self.trainable, "gradients": self.gradients,
                "optimizer": self.optimizer, "activations": self.activations, "temporary": self.temporary,
                "peak": self.peak}


def bill_lines(bill: dict[str, Any]) -> list[str]:
    """The bill (`MemoryBill.as_json()`) as aligned lines for people."""
    dtypes = ", ".join(f"{format_bytes(b)} {d}" for d, b in bill["weights_by_dtype"].items())
    rows = [("weights", bill["weights"], dtypes),
            ("  trainable", bill["trainable"], "fp32 master weights, part of the weights"),
            ("gradients", bill["gradients"], ""),
            ("optimizer state", bill["optimizer"], ""),
            ("activations", bill["activations"], f"kept for backward at batch {bill['batch_size']}, "
                                                 f"{bill['precision']}"),
            ("temporary", bill["temporary"], "forward's working set beyond what is kept, or backward's: largest "
                                             "recomputed region + 2 x largest activation"),
            ("peak", bill["peak"], "")]
    return [f"{name:<16}{format_bytes(n):>13}" + (f"  ({why})" if why else "") for name, n, why in rows]


class MemoryModel:
    """Bills of one meta-device model at any batch size, measured once per batch size."""

    def __init__(self, model, precision: str = "fp32", losses: dict[str, float] | None = None) -> None:
        """`losses`: the loss weights of the step to bill (a stage's); default the spec's."""
        if precision not in ("fp32", *HALF):
            raise ValueError(f"precision must be fp32, bf16 or fp16, not {precision}")
        self.model, self.precision, self.losses = model, precision, losses
        self.weights_by_dtype = _distinct_bytes([*model.parameters(), *model.buffers()])
        self.trainable = sum(p.nbytes for p in model.parameters() if p.requires_grad)
        self._measured: dict[int, Activations] = {}

    def activations(self, clips: int) -> Activations:
        if clips not in self._measured:
            self._measured[clips] = measure_activations(self.model, clips, self.precision, self.losses)
        return self._measured[clips]

    def bill(self, batch_size: int) -> MemoryBill:
        a = self.activations(batch_size)
        return MemoryBill(batch_size, self.precision, self.weights_by_dtype, self.trainable, self.trainable,
                          optimizer_states(self.model) * self.trainable, a.kept, a.temporary)

    def max_batch_size(self, budget: int) -> int | None:
        """The largest batch whose peak fits `budget` (0 when not even one clip fits; None when the spec
        has no loss, so there is no training step)."""
        if self.bill(1).peak > budget:
            return 0
        if not self.trainable:  # nothing trains (a zero-shot spec): no training step to size
            return None
        static, two, four = self.bill(1).static, self.activations(2), self.activations(4)

        def most(at_two: int, at_four: int) -> float:
            """The largest batch whose `static + term` fits, the term affine through its values at 2 and 4."""
            slope = (at_four - at_two) / 2
            return math.floor(2 + (budget - static - at_two) / slope) if slope > 0 else math.inf

        # the peak is the larger of two terms, each affine in the batch: the first to reach the budget decides
        n = min(most(two.kept + two.backward, four.kept + four.backward), most(two.forward, four.forward))
        if n == math.inf:  # nothing grows with the batch: no batch size is the largest
            return None
        n = max(1, n)
        if self.bill(n).peak <= budget:  # confirmed on the real shapes
            return n
        # a term is affine only piecewise (the forward's peak moves from one tower to another as the batch
        # grows); the peak stays convex, so the chord between a batch that fits and one that does not crosses
        # the budget at a batch that fits, on the last piece exactly: step there (halving after 8 chords, in
        # case the pieces are many)
        low = max(k for k in (1, 2, 4) if k < n and self.bill(k).peak <= budget)
        high, chords = n, 8
        while high - low > 1:
            at_low, at_high = self.bill(low).peak, self.bill(high).peak
            step = (budget - at_low) * (high - low) // max(1, at_high - at_low) if chords else (high - low) // 2
            chords = max(0, chords - 1)
            mid = min(max(low + step, low + 1), high - 1)
            low, high = (mid, high) if self.bill(mid).peak <= budget else (low, mid)
        return low
