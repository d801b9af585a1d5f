"""ViCLIP (Wang et al., ICLR 2024, "InternVid"): a CLIP ViT with joint space-time attention, our own
implementation that loads the official checkpoints strictly.

Vision: a Conv3d patch embedding with temporal kernel 1 (each frame embedded alone), the spatial
position table added per frame, a single class token (class embedding + position 0, the same for
every clip), a temporal position embedding [1, 8, W] added to the patch tokens, and the tokens laid out
patch-major: [CLS, p0t0, p0t1, ..., p0t(T-1), p1t0, ...] = `(n t)`. The blocks attend jointly over all
1 + N*T tokens; the output is ln_post(CLS) @ proj. With T != 8 the temporal embedding is interpolated
linearly (more frames) or truncated (fewer), as the official loader does; with T = 1 its mean is used.
Text: CLIP's causal text transformer with context 32, pooled at the end-of-text token. Frames are
normalised with ImageNet statistics. The logit scale is 1 / temp (temp is clamped at 0.01, so 100).

State-dict keys are the official ones (`vision_encoder.*`, `text_encoder.*`, `temp`), in the `.pth`
release (under "model") and the Hugging Face safetensors release alike; loading is strict and lists
every missing or unexpected key and every shape mismatch. After loading, attention is rebound as in
clip.py (`attn.qkv` as an nn.Linear) so LoRA/DoRA through peft work on it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from open_clip.transformer import QuickGELU, TextTransformer, Transformer
from safetensors.torch import load_file
from torch import nn

from composer.backbones.backbone import Backbone
from composer.backbones.blocks import BlockParts, PointHooks, RunContext
from composer.backbones.clip import ClipText, block_parts, fuse_attention, resblock_linear
from composer.backbones.families.viclip import CONTEXT, HUB, PRETRAINED_FRAMES, SIZES, VOCAB  # noqa: F401
from composer.backbones.registry import Request
from composer.backbones.stats import IMAGENET_MEAN, IMAGENET_STD
from composer.backbones.tower import Output, Tower
from composer.backbones.weights import weights_file
from composer.errors import SpecError
from composer.tensor_types import TType


class ViCLIPVision(nn.Module):
    """The official vision encoder's parameters, under the official names."""

    def __init__(self, width: int, layers: int, heads: int, patch: int, out: int, image_size: int) -> None:
        super().__init__()
        grid = image_size // patch
        scale = width ** -0.5
        self.patch = patch
        self.conv1 = nn.Conv3d(3, width, kernel_size=(1, patch, patch), stride=(1, patch, patch), bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(grid * grid + 1, width))
        self.temporal_positional_embedding = nn.Parameter(torch.zeros(1, PRETRAINED_FRAMES, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, layers, heads, act_layer=QuickGELU, norm_layer=nn.LayerNorm,
                                       batch_first=True)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, out))

    def temporal_embedding(self, frames: int) -> torch.Tensor:
        """[1, frames, W]: the pretrained 8-frame table, interpolated (more frames) or truncated (fewer)."""
        table = self.temporal_positional_embedding
        if frames == 1:
            return table.mean(dim=1, keepdim=True)
        if frames <= table.shape[1]:
            return table[:, :frames]
        return F.interpolate(table.transpose(1, 2), size=frames, mode="linear").transpose(1, 2)

    def embed(self, video: torch.Tensor) -> torch.Tensor:
        """[B, T, 3, H, W] (normalised) -> [B, 1 + N*T, W] in the official (n t) order."""
        b, t = video.shape[:2]
        x = self.conv1(video.permute(0, 2, 1, 3, 4))  # [B, W, T, h, w]
        x = x.flatten(3).permute(0, 2, 3, 1)  # [B, T, N, W]
        x = x + self.positional_embedding[1:].to(x.dtype)
        x = x + self.temporal_embedding(t).to(x.dtype).unsqueeze(2)  # [1, T, 1, W]
        x = x.transpose(1, 2).flatten(1, 2)  # [B, N*T, W], patch-major
        cls = (self.class_embedding + self.positional_embedding[0]).to(x.dtype).expand(b, 1, -1)
        return self.ln_pre(torch.cat([cls, x], dim=1))


class ViCLIPVisual(Tower):
    name, layout = "visual", "video"

    def __init__(self, backbone: "ViCLIPBackbone") -> None:
        v = backbone.model.vision_encoder
        super().__init__(backbone, v.ln_pre.normalized_shape[0], len(v.transformer.resblocks),
                         v.transformer.resblocks[0].attn.num_heads, v.proj.shape[1])
        self.vision, self.patch = v, v.patch
        self.outputs = {
            "": Output("clip embedding: ln_post(CLS) @ proj", lambda t: TType((t.shape[0], self.out_dim))),
            "cls": Output("the class token after ln_post, before proj", lambda t: TType((t.shape[0], self.width))),
            "tokens": Output("every token after ln_post, [CLS, (n t)...]",
                             lambda t: TType((t.shape[0], self.tokens(t), self.width))),
        }

    def tokens(self, in_type: TType) -> int:
        t, h, w = in_type.shape[1], in_type.shape[-2], in_type.shape[-1]
        return 1 + (h // self.patch) * (w // self.patch) * t

    def context(self, video) -> RunContext:
        b, t, _, h, w = video.shape
        return RunContext(batch=b, frames=t, layout="video", prefix=1, grid=(h // self.patch, w // self.patch),
                          tower="visual", order="hwt")

    def embed(self, video, ctx, hooks: PointHooks):
        b, t = video.shape[:2]
        frames = self.module.normalize(video.flatten(0, 1))
        return self.vision.embed(frames.view(b, t, *frames.shape[1:])), None

    def parts(self, index: int) -> BlockParts:
        return block_parts(self.vision.transformer.resblocks[index])

    def finish(self, x, ctx):
        x = self.vision.ln_post(x)
        return {"": x[:, 0] @ self.vision.proj, "cls": x[:, 0], "tokens": x}

    def linear_path(self, index, point):
        return resblock_linear("model.vision_encoder.", index, point)


class ViCLIPModel(nn.Module):
    """The official top-level module: vision_encoder, text_encoder, temp."""

    def __init__(self, c: dict, image_size: int) -> None:
        super().__init__()
        self.vision_encoder = ViCLIPVision(c["width"], c["layers"], c["heads"], c["patch"], c["out"], image_size)
        self.text_encoder = TextTransformer(context_length=CONTEXT, vocab_size=VOCAB, width=c["text_width"],
                                            heads=c["text_heads"], layers=c["text_layers"], output_dim=c["embed"],
                                            act_layer=QuickGELU, norm_layer=nn.LayerNorm)
        self.temp = nn.Parameter(torch.tensor(1 / 100))


class ViCLIPBackbone(Backbone):
    family = "viclip"
    tower_modules = {"visual": ("vision_encoder",), "text": ("text_encoder",)}

    def __init__(self, request: Request, model: ViCLIPModel) -> None:
        super().__init__(request, IMAGENET_MEAN, IMAGENET_STD)
        self.model = model
        fuse_attention(model.vision_encoder.transformer)
        fuse_attention(model.text_encoder.transformer)
        self.towers = {"visual": ViCLIPVisual(self), "text": ClipText(self, model.text_encoder, "model.text_encoder.")}


# The official .pth files carry the training config (an easydict.EasyDict) beside the weights. It is
# read as a plain dict, so they load with torch.load(weights_only=True): no code is ever unpickled.
_CONFIG_AS_DICT = [(dict, "easydict.EasyDict")]


def read_checkpoint(path: str) -> dict[str, torch.Tensor]:
    """The state dict of an official release: `.pth` (under "model") or the Hugging Face safetensors."""
    if path.endswith(".safetensors"):
        state = load_file(path)
    else:
        with torch.serialization.safe_globals(_CONFIG_AS_DICT):
            state = torch.load(path, map_location="cpu", weights_only=True)
        state = state["model"] if isinstance(state, dict) and "model" in state else state
    return _strip_prefix(state)


def _strip_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop a wrapper prefix (`module.` from DDP, `model.`) put in front of the official names."""
    key = next((k for k in state if "vision_encoder." in k), "")
    prefix = key[: key.index("vision_encoder.")] if key else ""
    if prefix and all(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items()}
    return state


def load_strict(model: ViCLIPModel, state: dict[str, torch.Tensor], where: str, loc=None) -> None:
    """Load every tensor, or fail listing every missing key, unexpected key and shape mismatch."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(f"{k}: checkpoint {tuple(state[k].shape)}, model {tuple(own[k].shape)}"
                    for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or shapes:
        lines = [f"{len(missing)} missing: {', '.join(missing)}" if missing else "",
                 f"{len(unexpected)} unexpected: {', '.join(unexpected)}" if unexpected else "",
                 f"{len(shapes)} with another shape: {'; '.join(shapes)}" if shapes else ""]
        raise SpecError(f"{where} does not match ViCLIP's official layout", loc,
                        hint="\n        ".join(line for line in lines if line))
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=True)


def build(request: Request, loc=None, name: str = "viclip") -> ViCLIPBackbone:
    c = dict(SIZES[request.size])
    if request.tiny:
        c.update(width=64, heads=2, text_width=64, text_heads=2)  # output widths stay: specs fit both sizes
    with torch.device(request.device):
        model = ViCLIPModel(c, request.image_size)
    tag = request.weights
    if request.load:
        path = weights_file(tag, f"ViCLIP {request.size}", "model.safetensors", name, loc)
        load_strict(model, read_checkpoint(path), path, loc)
    return ViCLIPBackbone(request, model.train(False))
