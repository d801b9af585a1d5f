"""A tower (visual or text) of a backbone: embed -> blocks -> finish, with hooks at every point.

A family file subclasses `Tower` with three small methods (embed, parts, finish); running the blocks,
installing attachments and deciding where autograd starts is shared here. Towers are plain objects
that look into their backbone module, so parameters are registered once, under the backbone.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn

from composer.backbones.blocks import BlockParts, PointHooks, RunContext, run_block
from composer.backbones.shape import BLOCK_POINTS, Output
from composer.recompute import recompute as recomputed
from composer.tensor_types import TType
from composer.uses import weight_deltas_off


class TowerHooks:
    """Everything attached to one tower: one `PointHooks` per block plus the tower-level points."""

    def __init__(self, depth: int) -> None:
        self.blocks = [PointHooks() for _ in range(depth)]
        self.tower = PointHooks()


class Tower:
    name: str = ""
    layout: str = "frames"  # see RunContext.layout
    input_dtype: str = "float"  # "float" (video) or "str" (texts)

    def __init__(self, module: nn.Module, width: int, depth: int, heads: int, out_dim: int) -> None:
        self.module = module  # the backbone nn.Module that owns this tower's parameters
        self.width, self.depth, self.heads, self.out_dim = width, depth, heads, out_dim
        self.hooks = TowerHooks(depth)

    # the tower-level points this tower honours (Tower.run applies these; `embed` is a family's own)
    tower_points: tuple[str, ...] = ("input", "output")

    @property
    def points(self) -> tuple[str, ...]:
        """The block points this tower honours: run_block applies them all, `attn.qkv` only where q, k and v
        come from one fused linear. A site elsewhere is an error, never a part that does nothing."""
        fused = self.parts(0).qkv is not None
        return tuple(p for p in BLOCK_POINTS if fused or p != "attn.qkv")

    # -- what a family provides
    def embed(self, inp: Any, ctx: RunContext, hooks: PointHooks) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Tokens entering block 1, and the attention mask (or None)."""
        raise NotImplementedError

    def parts(self, index: int) -> BlockParts:
        raise NotImplementedError

    def finish(self, x: torch.Tensor, ctx: RunContext) -> dict[str, torch.Tensor]:
        """The tower's outputs from the tokens leaving the last block; "" is the default output."""
        raise NotImplementedError

    def context(self, inp: Any) -> RunContext:
        raise NotImplementedError

    outputs: dict[str, Output] = {}
    prefix: int = 1  # tokens before the patch/word tokens
    fixed_frames: int | None = None  # a video tower that only takes this many frames (a fixed position table)

    def tokens(self, in_type: TType) -> int:
        """Tokens per sequence this tower runs its blocks on, for an input of `in_type`."""
        raise NotImplementedError

    def word_embeddings(self, text: str) -> torch.Tensor:
        """The token embeddings of the words of `text` (no start or end token), for components that start
        from words (CoOp's context). Text towers that give them override this."""
        raise ValueError(f"the {self.name} tower of {self.module.label} does not give word embeddings")

    # -- what the compiler asks
    def linear_path(self, index: int, point: str) -> str | None:
        """Module path (inside the backbone module) of the linear at a point, for weight deltas."""
        return None

    def point_dims(self, point: str) -> tuple[int, int]:
        """(input width, output width) at a block point."""
        d, hidden = self.width, self.mlp_width
        return {"attn.qkv": (d, 3 * d), "mlp.fc1": (d, hidden), "mlp.fc2": (hidden, d)}.get(point, (d, d))

    @property
    def mlp_width(self) -> int:
        return self.parts(0).fc1.out_features if hasattr(self.parts(0).fc1, "out_features") else 4 * self.width

    # -- running
    def run(self, inp: Any, grad_from: int | None, active: bool = True,
            recompute: frozenset[int] = frozenset()) -> dict[str, torch.Tensor]:
        """Run the tower. Blocks before `grad_from` run without autograd (None: the whole tower);
        blocks in `recompute` keep only their input for the backward pass and run again there
        (activation checkpointing); `active=False` runs the pretrained tower with nothing attached:
        no hooks, no weight deltas.
        Texts may come as a list of lists (str[C, N]): they run as one batch and every output gets the
        [C, N] leading shape back."""
        if self.input_dtype == "str" and inp and isinstance(inp[0], (list, tuple)):
            rows, per = len(inp), len(inp[0])
            out = self.run([text for row in inp for text in row], grad_from, active, recompute)
            return {k: v.reshape(rows, per, *v.shape[1:]) for k, v in out.items()}
        if not active:  # the pretrained tower: no hooks and no weight deltas, so nothing recomputed either (a
            with weight_deltas_off(self.module):  # backward-pass recomputation would run with the deltas on)
                return self._run(inp, grad_from, None, frozenset())
        return self._run(inp, grad_from, self.hooks, recompute)

    def run_deltas_only(self, inp: Any) -> dict[str, torch.Tensor]:
        """The tower with its weight deltas and nothing else attached: what a PEFT adapter of it holds
        (compiler/peft_format.py compares the library model with the adapter loaded against this)."""
        return self._run(inp, None, None, frozenset())

    def _run(self, inp: Any, grad_from: int | None, hooks: TowerHooks | None,
             recompute: frozenset[int]) -> dict[str, torch.Tensor]:
        ctx = self.context(inp)
        outer = torch.is_grad_enabled()

        def grad(i: int):
            on = outer and grad_from is not None and i >= grad_from
            return contextlib.nullcontext() if on == outer else torch.set_grad_enabled(on)

        with grad(0):
            x, mask = self.embed(inp, ctx, hooks.tower if hooks else PointHooks())
            if hooks:
                x = self._tower_input(x, ctx, hooks.tower)
        for i in range(self.depth):
            ctx.layer = i
            with grad(i):
                block_hooks = hooks.blocks[i] if hooks else None
                if i in recompute and torch.is_grad_enabled():
                    x = recomputed(run_block, self.parts(i), x, block_hooks, ctx, mask)
                else:
                    x = run_block(self.parts(i), x, block_hooks, ctx, mask)
        ctx.layer = -1
        with grad(self.depth if grad_from is None else grad_from):
            x = ctx.own(x)  # ctx.extra stays: recomputed blocks run again in the backward pass
            out = self.finish(x, ctx)
            if hooks:
                out[""] = hooks.tower.apply("output", out[""], out[""], ctx)
                out.update(self._collect_taps(ctx))
        return out

    def _tower_input(self, x: torch.Tensor, ctx: RunContext, hooks: PointHooks) -> torch.Tensor:
        """Tower-level `input`: sequential/taps as anywhere, and prompts that stay for the whole tower
        (shallow prompt tuning), removed again before `finish`."""
        x = hooks.apply("input", x, x, ctx)
        if hooks.prompts:
            extra = torch.cat([m(x, ctx) for m in hooks.prompts], dim=1)
            x = torch.cat([x, extra], dim=1)
            ctx.extra = extra.shape[1]
        return x

    def _collect_taps(self, ctx: RunContext) -> dict[str, torch.Tensor]:
        return {f"tap:{name}": self.shape_tap(torch.stack(values, dim=0), ctx) for name, values in ctx.taps.items()}

    def shape_tap(self, stacked: torch.Tensor, ctx: RunContext) -> torch.Tensor:
        """[L, batch*, N, D] as recorded -> the tap tensor seen in the flow."""
        if self.layout == "frames":
            layers, _, n, d = stacked.shape
            return stacked.view(layers, ctx.batch, ctx.frames, n, d).permute(1, 2, 0, 3, 4)
        return stacked.transpose(0, 1)

    def tap_type(self, in_type: TType, layers: int, tokens: int | str, width: int) -> TType:
        if self.layout == "frames":
            return TType((in_type.shape[0], in_type.shape[1], layers, tokens, width), prefix=self.prefix)
        return TType((in_type.shape[0], layers, tokens, width), prefix=self.prefix)
