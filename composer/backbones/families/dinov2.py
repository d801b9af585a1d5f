"""DINOv2 through timm, declared (the modules: composer/backbones/dinov2.py)."""

from __future__ import annotations

from composer.backbones.families.towers import Dims, frames_visual, tiny
from composer.backbones.registry import Family, Request, register_family
from composer.lazy import Lazy

SIZES = {"ViT-S/14": "vit_small_patch14_dinov2", "ViT-B/14": "vit_base_patch14_dinov2",
         "ViT-L/14": "vit_large_patch14_dinov2"}  # ours -> timm's
DIMS = {"ViT-S/14": Dims(384, 12, 6, 384), "ViT-B/14": Dims(768, 12, 12, 768), "ViT-L/14": Dims(1024, 24, 16, 1024)}
PATCH = 14
LINEARS = {"attn.qkv": "model.blocks.{i}.attn.qkv", "attn.out": "model.blocks.{i}.attn.proj",
           "mlp.fc1": "model.blocks.{i}.mlp.fc1", "mlp.fc2": "model.blocks.{i}.mlp.fc2"}


def shapes(request: Request) -> dict:
    dims = tiny(DIMS[request.size], keeps_out=False) if request.tiny else DIMS[request.size]
    return {"visual": frames_visual(dims, PATCH, LINEARS, {
        "": "per-frame class token after the final norm", "tokens": "per-frame patch tokens after the final norm"})}


FAMILY = register_family(Family(
    name="dinov2", sizes=tuple(SIZES), default_size="ViT-B/14",
    default_weights=lambda size: "lvd142m",
    build=Lazy("composer.backbones.dinov2:build"), towers=("visual",),
    summary="DINOv2 ViT through timm at the clip's resolution; sees a clip as B*T frames; no text tower",
    shapes=shapes, peft=Lazy("composer.backbones.dinov2:PEFT"),
))
