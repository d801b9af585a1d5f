"""VideoMAE through transformers, declared (the modules: composer/backbones/videomae.py)."""

from __future__ import annotations

from composer.backbones.families.towers import Dims, bert_linears, tiny, video_visual
from composer.backbones.registry import Family, Request, register_family
from composer.lazy import Lazy

SIZES = {"ViT-B/16": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
         "ViT-L/16": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096)}
HUB = {"ViT-B/16": "MCG-NJU/videomae-base", "ViT-L/16": "MCG-NJU/videomae-large"}
TUBELET, PATCH = 2, 16


def shapes(request: Request) -> dict:
    c = SIZES[request.size]
    dims = Dims(c["hidden_size"], c["num_hidden_layers"], c["num_attention_heads"], c["hidden_size"])
    dims = tiny(dims, keeps_out=False) if request.tiny else dims
    # no class token; the sine-cosine position table is built for the request's frame count
    return {"visual": video_visual(dims, PATCH, bert_linears("model.encoder.layer", "attention"), {
        "": "mean of the last block's tokens (after the final norm when the model has one)",
        "tokens": "every tubelet token, time-major (t, h, w)"}, prefix=0, tubelet=TUBELET,
        fixed_frames=request.frames)}


FAMILY = register_family(Family(
    name="videomae", sizes=tuple(SIZES), default_size="ViT-B/16",
    default_weights=lambda size: HUB[size], build=Lazy("composer.backbones.videomae:build"), towers=("visual",),
    summary="VideoMAE v1/v2 video ViT through transformers: 2x16x16 tubelets, joint space-time attention, "
            "no class token (16 frames -> 1568 tokens); v2 checkpoints load from a local file",
    shapes=shapes, peft=Lazy("composer.backbones.videomae:PEFT"),
))
