"""One transformer block, run with named points where components attach.

Every family (open_clip, timm, transformers, our ViCLIP) maps its block onto `BlockParts`; this file
is the only place that runs a block, so a site such as `blocks[8-12].attn.qkv` means the same thing on
every backbone. The points and what each use does there (docs/language.md, "Sites"):

    input      the residual stream entering the block
    tokens     extra tokens seen by this block's attention only (prompts), dropped after it
    attn       the attention residual branch  x -> ls1(out(attention(norm1(x))))
    attn.qkv   the fused q/k/v projection (attn.q, attn.k, attn.v: its three slices, or separate linears)
    attn.out   the attention output projection
    mlp        the MLP residual branch        x -> ls2(fc2(act(fc1(norm2(x)))))
    mlp.fc1    mlp.fc2: the two MLP linears
    block      the whole block                x -> block(x)

At a point with input `i` and output `o`: a parallel component adds f(i) to o; a sequential one
replaces o by f(o); a tap records o. Weight deltas (LoRA, DoRA) live inside the linear modules (peft)
and need nothing here. composer/uses.py says which use goes where; a tower lists the points it honours.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


@dataclass
class BlockParts:
    """A family's block seen as the parts of a generic ViT/BERT block (looked up at run time, so
    modules that peft wrapped are used as wrapped)."""

    norm1: Callable
    norm2: Callable
    out: nn.Module
    fc1: nn.Module
    act: Callable
    fc2: nn.Module
    heads: int
    qkv: nn.Module | None = None  # fused projection, or:
    q: Callable | None = None
    k: Callable | None = None
    v: Callable | None = None
    q_norm: Callable = _identity
    k_norm: Callable = _identity
    ls1: Callable = _identity
    ls2: Callable = _identity
    post_norm: bool = False  # BERT-style: norm after the residual add


@dataclass
class RunContext:
    """What a component at a site may need to know about the tensor it sees."""

    batch: int  # clips (or texts) in the batch
    frames: int  # frames per clip (1 for text)
    layout: str  # "frames": [B*T, N, D] per frame; "video": [B, 1+N*T, D] joint; "text": [C, L, D]
    prefix: int  # tokens before the patch/word tokens (class token, registers)
    grid: tuple[int, int] | None = None  # patch grid of one frame
    extra: int = 0  # tokens appended after the tower's own for the whole tower (shallow prompts)
    order: str = "thw"  # "video" layout: the patch tokens time-major (VideoMAE) or "hwt" patch-major (ViCLIP)
    layer: int = -1  # 0-based block index while inside a block, -1 outside
    tower: str = ""
    parts: BlockParts | None = None  # the block being run (a component may reuse its norms, as MMA/MSTA do)
    state: dict[str, Any] = field(default_factory=dict)  # tower-specific (e.g. text end-of-text positions)
    taps: dict[str, list[torch.Tensor]] = field(default_factory=lambda: defaultdict(list))

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x [batch, tokens, D] -> (prefix tokens, the patch/word tokens, appended prompt tokens). Components
        that reshape the patch tokens into the grid work on the middle part and pass the others through."""
        end = x.shape[1] - self.extra
        return x[:, : self.prefix], x[:, self.prefix: end], x[:, end:]

    def own(self, x: torch.Tensor) -> torch.Tensor:
        """x without the tokens appended for the whole tower: what the tower's types describe."""
        return x[:, : x.shape[1] - self.extra] if self.extra else x


class PointHooks:
    """What is attached at the points of one block (or at the tower-level points of a tower)."""

    def __init__(self) -> None:
        self.parallel: dict[str, list[nn.Module]] = defaultdict(list)
        self.sequential: dict[str, nn.Module] = {}
        self.prompts: list[nn.Module] = []  # each: (x, ctx) -> tokens, with `gate` (a tanh gate parameter or None)
        self.taps: dict[str, list[tuple[str, bool]]] = defaultdict(list)  # point -> [(tap name, detach)]

    def __bool__(self) -> bool:
        return bool(self.parallel or self.sequential or self.prompts or self.taps)

    def apply(self, point: str, inp: torch.Tensor, out: torch.Tensor, ctx: RunContext) -> torch.Tensor:
        for module in self.parallel.get(point, ()):
            out = out + module(inp, ctx)
        module = self.sequential.get(point)
        if module is not None:
            out = module(out, ctx)
        for name, detach in self.taps.get(point, ()):
            ctx.taps[name].append(ctx.own(out.detach() if detach else out))
        return out


NO_HOOKS = PointHooks()


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    b, n, d = x.shape
    return x.view(b, n, heads, d // heads).transpose(1, 2)


def _project(p: BlockParts, h: PointHooks, y: torch.Tensor, ctx: RunContext):
    if p.qkv is not None:
        qkv = h.apply("attn.qkv", y, p.qkv(y), ctx)
        q, k, v = qkv.chunk(3, dim=-1)
    else:
        q, k, v = p.q(y), p.k(y), p.v(y)
    return h.apply("attn.q", y, q, ctx), h.apply("attn.k", y, k, ctx), h.apply("attn.v", y, v, ctx)


def _extend_mask(mask: torch.Tensor | None, extra: int) -> torch.Tensor | None:
    """Let every query also see `extra` prompt keys appended after the sequence."""
    if mask is None or extra == 0:
        return mask
    if mask.dtype == torch.bool:
        return F.pad(mask, (0, extra), value=True)
    return F.pad(mask, (0, extra), value=0.0)


def _attention(p: BlockParts, h: PointHooks, x: torch.Tensor, mask: torch.Tensor | None,
               ctx: RunContext) -> torch.Tensor:
    """The attention branch. Prompts join the keys and values only; a gated prompt set is attended
    separately and added with tanh(gate), so a zero gate leaves the block exactly as it was."""
    n = x.shape[1]
    norm = _identity if p.post_norm else p.norm1
    joint, gated = [], []
    for module in h.prompts:
        tokens = module(x, ctx)
        (gated if module.gate is not None else joint).append((module, tokens))
    y = norm(torch.cat([x] + [t for _, t in joint], dim=1) if joint else x)
    # the projections also see this block's prompts, after the tower's own tokens: `extra` for them
    seen = replace(ctx, extra=ctx.extra + sum(t.shape[1] for _, t in joint)) if joint else ctx
    q, k, v = _project(p, h, y, seen)
    q = p.q_norm(_heads(q[:, :n], p.heads))
    k, v = p.k_norm(_heads(k, p.heads)), _heads(v, p.heads)
    o = F.scaled_dot_product_attention(q, k, v, attn_mask=_extend_mask(mask, k.shape[2] - n))
    for module, tokens in gated:
        _, kg, vg = _project(p, NO_HOOKS, norm(tokens), ctx)
        og = F.scaled_dot_product_attention(q, p.k_norm(_heads(kg, p.heads)), _heads(vg, p.heads))
        o = o + torch.tanh(module.gate).to(og.dtype) * og
    o = o.transpose(1, 2).reshape(x.shape[0], n, -1)
    o = h.apply("attn.out", o, p.out(o), ctx)
    return p.ls1(o)


def _mlp(p: BlockParts, h: PointHooks, x: torch.Tensor, ctx: RunContext) -> torch.Tensor:
    y = x if p.post_norm else p.norm2(x)
    a = p.act(h.apply("mlp.fc1", y, p.fc1(y), ctx))
    return p.ls2(h.apply("mlp.fc2", a, p.fc2(a), ctx))


def run_block(p: BlockParts, x: torch.Tensor, hooks: PointHooks | None, ctx: RunContext,
              mask: torch.Tensor | None = None) -> torch.Tensor:
    """Run one block on x [batch, tokens, width] with whatever is attached at its points."""
    h = hooks or NO_HOOKS
    ctx.parts = p
    x = h.apply("input", x, x, ctx) if h else x
    x_in = x
    a = h.apply("attn", x, _attention(p, h, x, mask, ctx), ctx)
    x = p.norm1(x + a) if p.post_norm else x + a
    m = h.apply("mlp", x, _mlp(p, h, x, ctx), ctx)
    x = p.norm2(x + m) if p.post_norm else x + m
    return h.apply("block", x_in, x, ctx)
