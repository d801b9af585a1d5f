"""VideoMAE (v1, Tong et al., NeurIPS 2022; v2, Wang et al., CVPR 2023) ViT through transformers'
VideoMAEModel: tubelets of 2x16x16 with a fixed sine-cosine position table, no class token, joint
space-time attention over 8x14x14 = 1568 tokens for 16 frames at 224 px.

v1 weights load by hub name (`MCG-NJU/videomae-base`, the K400 fine-tune `...-finetuned-kinetics`).
VideoMAE v2 ViT-B checkpoints (`.pth` or safetensors of the original code) load from a local file: their
fused `attn.qkv` is split into query/key/value and q_bias/v_bias become the query/value biases, which
is the same maths (the key has no bias in either). v2 uses LayerNorm eps 1e-6; v1's HF configs 1e-12.
"""

from __future__ import annotations

import re

import torch
from safetensors.torch import load_file
from transformers import VideoMAEConfig, VideoMAEModel

from composer.backbones.backbone import Backbone
from composer.backbones.blocks import BlockParts, PointHooks, RunContext
from composer.backbones.families.videomae import HUB, PATCH, SIZES, TUBELET  # noqa: F401
from composer.backbones.peft_layout import LINEAR, PeftLayout
from composer.backbones.registry import Request
from composer.backbones.stats import IMAGENET_MEAN, IMAGENET_STD
from composer.backbones.tower import Output, Tower
from composer.backbones.weights import fetch, is_local_path, local_file
from composer.errors import SpecError
from composer.tensor_types import TType


class VideoMAEVisual(Tower):
    name, layout = "visual", "video"

    def __init__(self, backbone: "VideoMAEBackbone") -> None:
        m = backbone.model
        cfg = m.config
        super().__init__(backbone, cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.hidden_size)
        self.mae, self.patch, self.prefix = m, PATCH, 0
        self.fixed_frames = cfg.num_frames  # the sine-cosine table is built for this many frames
        self.outputs = {
            "": Output("mean of the last block's tokens (after the final norm when the model has one)",
                       lambda t: TType((t.shape[0], self.width))),
            "tokens": Output("every tubelet token, time-major (t, h, w)",
                             lambda t: TType((t.shape[0], self.tokens(t), self.width))),
        }

    def tokens(self, in_type: TType) -> int:
        t, h, w = in_type.shape[1], in_type.shape[-2], in_type.shape[-1]
        return (t // TUBELET) * (h // PATCH) * (w // PATCH)

    def context(self, video) -> RunContext:
        b, t, _, h, w = video.shape
        return RunContext(batch=b, frames=t // TUBELET, layout="video", prefix=0, grid=(h // PATCH, w // PATCH),
                          tower="visual", order="thw")

    def embed(self, video, ctx, hooks: PointHooks):
        b, t = video.shape[:2]
        frames = self.module.normalize(video.flatten(0, 1))
        return self.mae.embeddings(frames.view(b, t, *frames.shape[1:]), None), None

    def parts(self, index: int) -> BlockParts:
        layer = self.mae.encoder.layer[index]
        attn = layer.attention
        return BlockParts(norm1=layer.layernorm_before, norm2=layer.layernorm_after, q=attn.attention.query,
                          k=attn.attention.key, v=attn.attention.value, out=attn.output.dense,
                          fc1=layer.intermediate.dense, act=layer.intermediate.intermediate_act_fn,
                          fc2=layer.output.dense, heads=self.heads)

    def finish(self, x, ctx):
        if self.mae.layernorm is not None:
            x = self.mae.layernorm(x)
        return {"": x.mean(dim=1), "tokens": x}

    def linear_path(self, index, point):
        names = {"attn.q": "attention.attention.query", "attn.k": "attention.attention.key",
                 "attn.v": "attention.attention.value", "attn.out": "attention.output.dense",
                 "mlp.fc1": "intermediate.dense", "mlp.fc2": "output.dense"}
        return f"model.encoder.layer.{index}.{names[point]}" if point in names else None


class VideoMAEBackbone(Backbone):
    family = "videomae"

    def __init__(self, request: Request, model: VideoMAEModel) -> None:
        super().__init__(request, IMAGENET_MEAN, IMAGENET_STD)
        self.model = model
        self.towers = {"visual": VideoMAEVisual(self)}


_V2_NAMES = [
    (r"patch_embed\.proj\.", "embeddings.patch_embeddings.projection."),
    (r"blocks\.(\d+)\.norm1\.", r"encoder.layer.\1.layernorm_before."),
    (r"blocks\.(\d+)\.norm2\.", r"encoder.layer.\1.layernorm_after."),
    (r"blocks\.(\d+)\.attn\.q_bias", r"encoder.layer.\1.attention.attention.query.bias"),
    (r"blocks\.(\d+)\.attn\.v_bias", r"encoder.layer.\1.attention.attention.value.bias"),
    (r"blocks\.(\d+)\.attn\.proj\.", r"encoder.layer.\1.attention.output.dense."),
    (r"blocks\.(\d+)\.mlp\.fc1\.", r"encoder.layer.\1.intermediate.dense."),
    (r"blocks\.(\d+)\.mlp\.fc2\.", r"encoder.layer.\1.output.dense."),
    (r"^norm\.", "layernorm."),
]


def from_original(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An original VideoMAE (v1/v2) encoder state dict in transformers' names; heads are dropped."""
    for key in ("module", "model"):
        if isinstance(state.get(key), dict):
            state = state[key]
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        key = re.sub(r"^(model\.|encoder\.|backbone\.)", "", key)
        if key.startswith(("head.", "fc_norm.", "decoder.", "encoder_to_decoder", "mask_token", "pos_embed")):
            continue
        m = re.match(r"blocks\.(\d+)\.attn\.qkv\.weight", key)
        if m:
            q, k, v = value.chunk(3, dim=0)
            base = f"encoder.layer.{m.group(1)}.attention.attention."
            out.update({base + "query.weight": q, base + "key.weight": k, base + "value.weight": v})
            continue
        for pattern, repl in _V2_NAMES:
            key = re.sub(pattern, repl, key)
        out[key] = value
    return out


def _config(request: Request, mean_pooling: bool, eps: float) -> VideoMAEConfig:
    c = dict(SIZES[request.size])
    if request.tiny:
        c.update(hidden_size=64, num_attention_heads=2, intermediate_size=256)
    return VideoMAEConfig(image_size=request.image_size, patch_size=PATCH, num_frames=request.frames,
                          tubelet_size=TUBELET, use_mean_pooling=mean_pooling, layer_norm_eps=eps, **c)


def build(request: Request, loc=None, name: str = "videomae") -> VideoMAEBackbone:
    tag = request.weights
    if request.load and not is_local_path(tag):
        model = fetch(f"VideoMAE {request.size} ({tag})", f"'{tag}'",
                      lambda: VideoMAEModel.from_pretrained(tag), name, loc)
        return VideoMAEBackbone(request, model.to(request.device).train(False))
    if request.load:
        path = str(local_file(tag, f"VideoMAE {request.size}", loc))
        if path.endswith(".safetensors"):
            state = from_original(load_file(path))
        else:
            state = from_original(torch.load(path, map_location="cpu", weights_only=True))
        mean_pooling = "layernorm.weight" not in state
        with torch.device(request.device):
            model = VideoMAEModel(_config(request, mean_pooling, 1e-6))
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise SpecError(f"{path} does not fit VideoMAE {request.size}", loc,
                            hint=f"missing {missing[:6]}, unexpected {unexpected[:6]}")
        return VideoMAEBackbone(request, model.train(False))
    with torch.device(request.device):
        model = VideoMAEModel(_config(request, mean_pooling=False, eps=1e-12))
    return VideoMAEBackbone(request, model.train(False))


def _library_model(backbone: VideoMAEBackbone, device: str) -> VideoMAEModel:
    """transformers' VideoMAEModel with our model's own config: composer's VideoMAE *is* that model."""
    with torch.device(device):
        return VideoMAEModel(VideoMAEConfig(**backbone.model.config.to_dict())).train(False)


PEFT = PeftLayout(
    library="transformers", model=_library_model, module=lambda path: (path.removeprefix("model."), LINEAR),
    library_state=lambda state: {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")},
    hub_name=lambda request: str(request.weights),  # a hub name already (MCG-NJU/videomae-base)
    forward=lambda model, tower, clips: model(pixel_values=clips).last_hidden_state.mean(dim=1))
