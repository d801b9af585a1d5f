"""Frozen backbone weights stored once in the run's half dtype.

Under autocast a matmul-like layer (linear, convolution) casts its fp32 weight to bf16/fp16 on every
forward, and again on every recomputation in the backward pass. A frozen weight never changes, so
storing it in the half dtype once gives autocast the very same tensor (bit for bit: the cast is the
same rounding) without the per-step copies, and halves its memory.

What is cast: the frozen weights and biases of the backbones' nn.Linear and nn.Conv* layers, the
base layers under LoRA/DoRA included (peft adds its fp32 trainable factors to them, as with any bf16
base model). What stays fp32: everything that trains (fp32 master weights for the optimizer), the
weight-delta factors components own, and every other frozen tensor: norms, embeddings, class
tokens, positional tables and buffers. Autocast runs norms in fp32 and casts their weights back up,
so a half copy would only round them; the others are small and are read outside autocast's
half-precision operations, where a half tensor would change what they compute.

A model cast this way must run under autocast (fp32 inputs meet half weights only through the
layers autocast casts); `composer run`, `eval` and `predict` always do.
"""

from __future__ import annotations

import torch
from torch import nn

HALF = {"bf16": torch.bfloat16, "fp16": torch.float16}
CAST_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def resolve_precision(precision: str, cpu: bool = False) -> str:
    """`auto` is bf16 on a GPU that supports it, fp32 otherwise (on the CPU, or with no GPU); the one place
    this rule lives (composer build's bill, composer sweep's dry run and every run read it)."""
    if precision != "auto":
        return precision
    return "bf16" if not cpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"


def frozen_layer_weights(model) -> list[nn.Parameter]:
    """The frozen Linear/Conv weights and biases of `model`'s backbones (each shared tensor once)."""
    seen: dict[int, nn.Parameter] = {}
    for backbone_name, backbone in model.backbones.items():
        for module_name, module in backbone.named_modules():
            if not isinstance(module, CAST_LAYERS):
                continue
            for pname, param in module.named_parameters(recurse=False):
                full = f"{module_name}.{pname}" if module_name else pname
                if param.requires_grad or f"{backbone_name}.{full}" in model.owners:
                    continue
                seen.setdefault(id(param), param)
    return list(seen.values())


def store_frozen_in(model, precision: str) -> int:
    """Cast the frozen layer weights of `model` to `precision`'s half dtype in place (nothing for fp32);
    returns how many tensors were cast. The Parameter objects stay the same, so hooks, peft's layers and
    tied tensors keep pointing at them."""
    dtype = HALF.get(precision)
    if dtype is None:
        return 0
    params = [p for p in frozen_layer_weights(model) if p.is_floating_point() and p.dtype != dtype]
    for param in params:
        param.data = param.data.to(dtype)
    return len(params)
