"""Where a family's library model holds the linears that composer's weight deltas sit on, for PEFT's format.

PEFT keys an adapter by the module names of the library's own model (timm's DINOv2, open_clip's CLIP, transformers' VideoMAE), and
composer rebinds some of them: open_clip's nn.MultiheadAttention keeps q/k/v as a bare `in_proj_weight`,
which composer binds as the linear `attn.qkv` (backbones/clip.py). A family that can be written in PEFT's
format declares a `PeftLayout` (Family.peft); composer/compiler/peft_format.py does the writing and reading.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from composer.backbones.demo_weights import FOLDER
from composer.backbones.weights import is_local_path

if TYPE_CHECKING:
    from torch import nn

    from composer.backbones.registry import Request

# where a composer linear sits in the library's module: the module itself, or one projection of an
# nn.MultiheadAttention that PEFT wraps as a whole (its LoRA covers in_proj and out_proj, one rank for both)
LINEAR, IN_PROJ, OUT_PROJ = "linear", "in_proj", "out_proj"


@dataclass(frozen=True)
class PeftLayout:
    library: str  # the library whose model PEFT wraps ("timm", "open_clip")
    # (our backbone, device) -> the library's model as the library builds it, unloaded, on that device
    model: Callable[[Any, str], "nn.Module"]
    # a composer linear path ("model.blocks.0.attn.qkv") -> (the library module PEFT targets, LINEAR | IN_PROJ | OUT_PROJ)
    module: Callable[[str], tuple[str, str]]
    # composer's backbone state (its base weights, without any weight delta) -> the library model's state dict
    library_state: Callable[[dict], dict]
    hub_name: Callable[["Request"], str]  # the base's Hub name for a real weight tag
    # (library model, tower, input) -> the tower's main output as composer's tower gives it ("" output), from
    # normalised clips [B, T, 3, H, W] for a visual tower or a list of texts for a text tower
    forward: Callable[["nn.Module", str, Any], Any]


def base_name(layout: PeftLayout, request: "Request", label: str) -> str:
    """The adapter's `base_model_name_or_path`: the Hub name of a real tag, a local file's path, or, for tiny
    backbones, a name that says which tiny weights (they exist only inside composer)."""
    tag = request.weights
    if request.tiny:
        if tag is None:
            return f"composer/random {label}"
        path = Path(tag)
        return f"composer/demo {label} ({path.name})" if path.parent == FOLDER else str(tag)
    if tag is None:
        return f"composer/random {label}"
    return str(tag) if is_local_path(tag) else layout.hub_name(request)
