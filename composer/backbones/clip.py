"""CLIP (OpenAI and LAION weights) through open_clip: a visual tower applied per frame and a text tower.

open_clip's blocks use nn.MultiheadAttention, whose q/k/v projection is a bare parameter. We rebind
it as an `nn.Linear` (`attn.qkv`, sharing the same tensor) after the weights are loaded, so LoRA and
DoRA through peft work on it as on timm's fused qkv (peft's own nn.MultiheadAttention layer supports
neither DoRA nor LoRA on in_proj alone). The maths is unchanged; docs/design-notes.md has the details.
"""

from __future__ import annotations

import copy
import functools

import open_clip
import torch
from torch import nn

from composer.backbones.backbone import Backbone
from composer.backbones.blocks import BlockParts, PointHooks, RunContext
from composer.backbones.families.clip import SIZES, activation
from composer.backbones.families.towers import TINY_HEADS, TINY_WIDTH
from composer.backbones.peft_layout import IN_PROJ, LINEAR, OUT_PROJ, PeftLayout
from composer.backbones.registry import Request
from composer.backbones.stats import CLIP_MEAN, CLIP_STD
from composer.backbones.tower import Output, Tower
from composer.backbones.weights import fetch, is_local_path, is_torchscript, local_file
from composer.tensor_types import TType


class FusedAttention(nn.Module):
    """The parameters of an nn.MultiheadAttention as two linears: `qkv` (in_proj) and `out_proj`."""

    def __init__(self, mha: nn.MultiheadAttention) -> None:
        super().__init__()
        with torch.device("meta"):
            self.qkv = nn.Linear(mha.embed_dim, 3 * mha.embed_dim, bias=mha.in_proj_bias is not None)
        self.qkv.weight = mha.in_proj_weight
        if mha.in_proj_bias is not None:
            self.qkv.bias = mha.in_proj_bias
        self.out_proj = mha.out_proj
        self.num_heads = mha.num_heads


def fuse_attention(transformer: nn.Module) -> None:
    for block in transformer.resblocks:
        if isinstance(block.attn, nn.MultiheadAttention):
            block.attn = FusedAttention(block.attn)


def block_parts(block: nn.Module) -> BlockParts:
    return BlockParts(norm1=block.ln_1, norm2=block.ln_2, qkv=block.attn.qkv, out=block.attn.out_proj,
                      fc1=block.mlp.c_fc, act=block.mlp.gelu, fc2=block.mlp.c_proj, heads=block.attn.num_heads,
                      ls1=block.ls_1, ls2=block.ls_2)


_RESBLOCK_LINEARS = {"attn.qkv": "attn.qkv", "attn.out": "attn.out_proj", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"}


def resblock_linear(prefix: str, index: int, point: str) -> str | None:
    """The module path of a block point's nn.Linear in an open_clip transformer (ViCLIP's towers share the
    layout); attn.qkv is the Linear that `fuse_attention` binds. None: the point is not a Linear."""
    name = _RESBLOCK_LINEARS.get(point)
    return f"{prefix}transformer.resblocks.{index}.{name}" if name else None


class ClipVisual(Tower):
    name, layout = "visual", "frames"

    def __init__(self, backbone: "ClipBackbone") -> None:
        v = backbone.model.visual
        super().__init__(backbone, v.transformer.width, len(v.transformer.resblocks),
                         v.transformer.resblocks[0].attn.num_heads, v.output_dim)
        self.visual = v
        self.patch = v.patch_size[0]
        self.outputs = {
            "": Output("per-frame embedding (class token, ln_post, proj)", lambda t: TType(t.shape[:2] + (self.out_dim,))),
            "cls": Output("per-frame class token after ln_post, before proj", lambda t: TType(t.shape[:2] + (self.width,))),
            "tokens": Output("per-frame patch tokens after ln_post",
                             lambda t: TType(t.shape[:2] + (self._grid(t)[0] * self._grid(t)[1], self.width))),
        }

    def _grid(self, t: TType) -> tuple[int, int]:
        return (t.shape[-2] // self.patch, t.shape[-1] // self.patch)

    def tokens(self, in_type: TType) -> int:
        h, w = self._grid(in_type)
        return 1 + h * w

    def context(self, video: torch.Tensor) -> RunContext:
        b, t, _, h, w = video.shape
        return RunContext(batch=b, frames=t, layout="frames", prefix=1, grid=(h // self.patch, w // self.patch),
                          tower="visual")

    def embed(self, video, ctx, hooks: PointHooks):
        frames = self.module.normalize(video.flatten(0, 1))
        return self.visual._embeds(frames), None

    def parts(self, index: int) -> BlockParts:
        return block_parts(self.visual.transformer.resblocks[index])

    def finish(self, x, ctx):
        pooled, tokens = self.visual._pool(x)
        b, t = ctx.batch, ctx.frames
        return {"": (pooled @ self.visual.proj).view(b, t, -1), "cls": pooled.view(b, t, -1),
                "tokens": tokens.reshape(b, t, tokens.shape[1], -1)}

    def linear_path(self, index, point):
        return resblock_linear("model.visual.", index, point)


@functools.lru_cache(maxsize=64)
def tokenize(texts: tuple[str, ...], context_length: int) -> torch.Tensor:
    return open_clip.tokenize(list(texts), context_length=context_length)


class ClipText(Tower):
    """A CLIP text transformer: open_clip's CLIP (text attributes on the model itself) or a TextTransformer."""

    name, layout, input_dtype = "text", "text", "str"
    tower_points = ("embed", "input", "output")  # `embed`: the token embeddings, before positions (CoOp)

    def __init__(self, backbone: Backbone, text: nn.Module, path: str) -> None:
        super().__init__(backbone, text.transformer.width, len(text.transformer.resblocks),
                         text.transformer.resblocks[0].attn.num_heads, text.text_projection.shape[1])
        self.clip, self.path = text, path
        self.outputs = {
            "": Output("text embedding at the end-of-text token (ln_final, projection)",
                       lambda t: TType(t.shape + (self.out_dim,))),
            "tokens": Output("every token's embedding (ln_final, projection)",
                             lambda t: TType(t.shape + (text.context_length, self.out_dim))),
            "word_mask": Output("1 at the words of each text (between the start and end tokens), else 0",
                                lambda t: TType(t.shape + (text.context_length,))),
        }

    def tokens(self, in_type: TType) -> int:
        return self.clip.context_length

    def context(self, texts) -> RunContext:
        return RunContext(batch=len(texts), frames=1, layout="text", prefix=1, tower="text")

    def embed(self, texts, ctx, hooks: PointHooks):
        m = self.clip
        ids = tokenize(tuple(texts), m.context_length).to(m.token_embedding.weight.device)
        ctx.state["eot"] = ids.argmax(dim=-1)
        x = m.token_embedding(ids)
        x = hooks.apply("embed", x, x, ctx)
        x = x + m.positional_embedding[: x.shape[1]].to(x.dtype)
        return x, m.attn_mask[: x.shape[1], : x.shape[1]]

    def word_embeddings(self, text: str) -> torch.Tensor:
        m = self.clip
        ids = tokenize((text,), m.context_length)[0]  # on the CPU: the end token is found before moving (meta)
        return m.token_embedding(ids[1: int(ids.argmax())].to(m.token_embedding.weight.device)).detach()

    def parts(self, index: int) -> BlockParts:
        return block_parts(self.clip.transformer.resblocks[index])

    def finish(self, x, ctx):
        x = self.clip.ln_final(x)
        tokens = x @ self.clip.text_projection
        eot = ctx.state["eot"]
        position = torch.arange(x.shape[1], device=x.device)
        words = ((position[None] >= 1) & (position[None] < eot[:, None])).to(tokens.dtype)
        return {"": tokens[torch.arange(x.shape[0], device=x.device), eot], "tokens": tokens, "word_mask": words}

    def linear_path(self, index, point):
        return resblock_linear(self.path, index, point)


class ClipBackbone(Backbone):
    family = "clip"
    tower_modules = {"visual": ("visual",),
                     "text": ("transformer", "token_embedding", "positional_embedding", "ln_final", "text_projection")}

    def __init__(self, request: Request, model: nn.Module, mean, std) -> None:
        super().__init__(request, mean, std)
        self.model = model
        fuse_attention(model.visual.transformer)
        fuse_attention(model.transformer)
        self.towers = {"visual": ClipVisual(self), "text": ClipText(self, model, "model.")}


def _config(request: Request) -> dict:
    cfg = copy.deepcopy(open_clip.get_model_config(SIZES[request.size]))
    cfg["vision_cfg"]["image_size"] = request.image_size
    if request.tiny:  # narrow inside; the joint embedding keeps its real width, so specs fit both sizes
        cfg["vision_cfg"].update(width=TINY_WIDTH, head_width=TINY_WIDTH // TINY_HEADS)
        cfg["text_cfg"].update(width=TINY_WIDTH, heads=TINY_HEADS)
    return cfg


def build(request: Request, loc=None, name: str = "clip") -> ClipBackbone:
    arch = SIZES[request.size]
    tag = request.weights
    if request.load and tag is not None and is_local_path(tag):
        local_file(tag, f"CLIP {request.size}", loc)  # a missing file says so before anything else
    quick_gelu = activation(request, loc, name) == "quick_gelu"  # refuses a tag open_clip does not have
    pretrained = {} if tag is None or is_local_path(tag) else open_clip.get_pretrained_cfg(arch, tag)
    with torch.device(request.device):
        model = open_clip.CLIP(**_config(request), quick_gelu=quick_gelu)
    if request.load:
        if is_local_path(tag):
            path = str(local_file(tag, f"CLIP {request.size}", loc))
        else:
            path = fetch(f"CLIP {request.size} ({tag})", f"'{pretrained.get('hf_hub', arch)}'",
                         lambda: open_clip.download_pretrained(pretrained), name, loc)
        # a TorchScript archive cannot be read with weights_only (open_clip reads it through torch.jit.load)
        open_clip.load_checkpoint(model, path, weights_only=not is_torchscript(path))
    mean = pretrained.get("mean", CLIP_MEAN)
    std = pretrained.get("std", CLIP_STD)
    return ClipBackbone(request, model.train(False), mean, std)


def _library_model(backbone: ClipBackbone, device: str) -> nn.Module:
    """open_clip's CLIP as `build` makes it, unloaded and not rebound: q/k/v stay nn.MultiheadAttention's."""
    request = backbone.request
    quick_gelu = activation(request) == "quick_gelu"
    with torch.device(device):
        return open_clip.CLIP(**_config(request), quick_gelu=quick_gelu).train(False)


def _library_module(path: str) -> tuple[str, str]:
    """composer's `attn.qkv` and `attn.out_proj` are the two projections of open_clip's `attn`, which PEFT
    wraps as one nn.MultiheadAttention layer; the MLP's linears are themselves."""
    path = path.removeprefix("model.")
    for suffix, part in ((".attn.qkv", IN_PROJ), (".attn.out_proj", OUT_PROJ)):
        if path.endswith(suffix):
            return path.removesuffix(suffix) + ".attn", part
    return path, LINEAR


def _library_state(state: dict) -> dict:
    out = {}
    for key, value in state.items():
        key = key.removeprefix("model.")
        out[key.replace(".attn.qkv.weight", ".attn.in_proj_weight").replace(".attn.qkv.bias", ".attn.in_proj_bias")] = value
    return out


def _hub_name(request: Request) -> str:
    hub = open_clip.get_pretrained_cfg(SIZES[request.size], request.weights).get("hf_hub", "")
    return hub.rstrip("/") or f"open_clip/{SIZES[request.size]}.{request.weights}"


def _library_forward(model: nn.Module, tower: str, inp):
    if tower == "text":
        return model.encode_text(open_clip.tokenize(list(inp), context_length=model.context_length))
    return model.encode_image(inp.flatten(0, 1))


PEFT = PeftLayout(library="open_clip", model=_library_model, module=_library_module,
                  library_state=_library_state, hub_name=_hub_name, forward=_library_forward)
