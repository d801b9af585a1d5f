"""DINOv2 through timm (ViT-S/B/L/14): an image tower applied per frame, no text tower.

timm's DINOv2 models default to 518 px; we build them at the clip's size (224 by default), and timm
resamples the position embedding of the pretrained weights to that grid when it loads them.
"""

from __future__ import annotations

import timm
import torch
from torch import nn

from composer.backbones.backbone import Backbone
from composer.backbones.blocks import BlockParts, PointHooks, RunContext
from composer.backbones.families.dinov2 import SIZES
from composer.backbones.families.towers import TINY_HEADS, TINY_WIDTH
from composer.backbones.peft_layout import LINEAR, PeftLayout
from composer.backbones.registry import Request
from composer.backbones.stats import IMAGENET_MEAN, IMAGENET_STD
from composer.backbones.tower import Output, Tower
from composer.backbones.weights import fetch, is_local_path, local_file
from composer.tensor_types import TType

# timm starts DINOv2's LayerScale at 1e-5 (right for training from scratch): with it every block of a random
# tower adds almost nothing, the class token leaves the tower equal for every image (spread across clips 8e-6
# against 1.0 across features), and a weight delta inside the blocks gets gradients 1e-5 times too small. A
# random tower stands in for a pretrained one, whose blocks do change the class token: it starts at 1.
# Loaded weights (pretrained or --weights demo) overwrite it.
RANDOM_LAYER_SCALE = 1.0


def _parts(block: nn.Module) -> BlockParts:
    return BlockParts(norm1=block.norm1, norm2=block.norm2, qkv=block.attn.qkv, out=block.attn.proj,
                      q_norm=block.attn.q_norm, k_norm=block.attn.k_norm, fc1=block.mlp.fc1, act=block.mlp.act,
                      fc2=block.mlp.fc2, heads=block.attn.num_heads, ls1=block.ls1, ls2=block.ls2)


_LINEARS = {"attn.qkv": "attn.qkv", "attn.out": "attn.proj", "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2"}


class DinoVisual(Tower):
    name, layout = "visual", "frames"

    def __init__(self, backbone: "DinoBackbone") -> None:
        m = backbone.model
        super().__init__(backbone, m.embed_dim, len(m.blocks), m.blocks[0].attn.num_heads, m.embed_dim)
        self.vit = m
        self.patch = m.patch_embed.patch_size[0]
        self.prefix = m.num_prefix_tokens
        self.outputs = {
            "": Output("per-frame class token after the final norm", lambda t: TType(t.shape[:2] + (self.width,))),
            "tokens": Output("per-frame patch tokens after the final norm",
                             lambda t: TType(t.shape[:2] + ((t.shape[-2] // self.patch) * (t.shape[-1] // self.patch),
                                                            self.width))),
        }

    def tokens(self, in_type: TType) -> int:
        return self.prefix + (in_type.shape[-2] // self.patch) * (in_type.shape[-1] // self.patch)

    def context(self, video) -> RunContext:
        b, t, _, h, w = video.shape
        return RunContext(batch=b, frames=t, layout="frames", prefix=self.vit.num_prefix_tokens,
                          grid=(h // self.patch, w // self.patch), tower="visual")

    def embed(self, video, ctx, hooks: PointHooks):
        m = self.vit
        frames = self.module.normalize(video.flatten(0, 1))
        x = m.norm_pre(m.patch_drop(m._pos_embed(m.patch_embed(frames))))
        return x, None

    def parts(self, index: int) -> BlockParts:
        return _parts(self.vit.blocks[index])

    def finish(self, x, ctx):
        x = self.vit.norm(x)
        b, t, p = ctx.batch, ctx.frames, self.vit.num_prefix_tokens
        return {"": x[:, 0].reshape(b, t, -1), "tokens": x[:, p:].reshape(b, t, x.shape[1] - p, -1)}

    def linear_path(self, index, point):
        return f"model.blocks.{index}.{_LINEARS[point]}" if point in _LINEARS else None


class DinoBackbone(Backbone):
    family = "dinov2"

    def __init__(self, request: Request, model: nn.Module) -> None:
        super().__init__(request, IMAGENET_MEAN, IMAGENET_STD)
        self.model = model
        for block in model.blocks:  # the generic block runner skips these; make sure they do nothing
            assert isinstance(block.attn.norm, nn.Identity) and isinstance(block.mlp.norm, nn.Identity)
        self.towers = {"visual": DinoVisual(self)}


def _kwargs(request: Request) -> dict:
    kwargs: dict = {"img_size": request.image_size}
    if request.tiny:
        kwargs.update(embed_dim=TINY_WIDTH, num_heads=TINY_HEADS)
    if not request.load:
        kwargs["init_values"] = RANDOM_LAYER_SCALE
    return kwargs


def build(request: Request, loc=None, name: str = "dinov2") -> DinoBackbone:
    arch = SIZES[request.size]
    kwargs = _kwargs(request)
    tag = request.weights
    with torch.device(request.device):
        if not request.load:
            model = timm.create_model(arch, pretrained=False, **kwargs)
        elif is_local_path(tag):
            path = str(local_file(tag, f"DINOv2 {request.size}", loc))
            model = timm.create_model(arch, pretrained=True, pretrained_cfg_overlay={"file": path}, **kwargs)
        else:
            full = f"{arch}.{tag}"
            model = fetch(f"DINOv2 {request.size} ({tag})", f"'timm/{full}'",
                          lambda: timm.create_model(full, pretrained=True, **kwargs), name, loc)
    return DinoBackbone(request, model.train(False))


def _library_model(backbone: DinoBackbone, device: str) -> nn.Module:
    """timm's DINOv2 as `build` makes it, unloaded: composer's DINOv2 *is* timm's model, no linear rebound."""
    request = backbone.request
    with torch.device(device):
        return timm.create_model(SIZES[request.size], pretrained=False, **_kwargs(request)).train(False)


def _strip_model(path: str) -> tuple[str, str]:
    return path.removeprefix("model."), LINEAR


PEFT = PeftLayout(
    library="timm", model=_library_model, module=_strip_model,
    library_state=lambda state: {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")},
    hub_name=lambda request: f"timm/{SIZES[request.size]}.{request.weights}",
    forward=lambda model, tower, clips: model.forward_features(clips.flatten(0, 1))[:, 0])
