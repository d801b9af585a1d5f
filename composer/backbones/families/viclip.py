"""ViCLIP (InternVid), declared (the modules, our own implementation: composer/backbones/viclip.py)."""

from __future__ import annotations

from composer.backbones.families.clip import TEXT_OUTPUTS
from composer.backbones.families.towers import Dims, resblock_linears, text, tiny, video_visual
from composer.backbones.registry import Family, Request, register_family
from composer.lazy import Lazy

SIZES = {  # vision width, layers, heads, patch, output dim | text width, layers, heads, embed dim
    "ViT-B/16": dict(width=768, layers=12, heads=12, patch=16, out=512, text_width=512, text_layers=12,
                     text_heads=8, embed=512),
    "ViT-L/14": dict(width=1024, layers=24, heads=16, patch=14, out=768, text_width=768, text_layers=12,
                     text_heads=12, embed=768),
}
HUB = {"ViT-B/16": "OpenGVLab/ViCLIP-B-16-hf", "ViT-L/14": "OpenGVLab/ViCLIP-L-14-hf"}
CONTEXT, VOCAB, PRETRAINED_FRAMES = 32, 49408, 8


def shapes(request: Request) -> dict:
    c = SIZES[request.size]
    visual = Dims(c["width"], c["layers"], c["heads"], c["out"])
    txt = Dims(c["text_width"], c["text_layers"], c["text_heads"], c["embed"])
    if request.tiny:  # output widths stay: specs fit both sizes
        visual, txt = tiny(visual, keeps_out=True), tiny(txt, keeps_out=True)
    return {
        "visual": video_visual(visual, c["patch"], resblock_linears("model.vision_encoder."), {
            "": "clip embedding: ln_post(CLS) @ proj", "cls": "the class token after ln_post, before proj",
            "tokens": "every token after ln_post, [CLS, (n t)...]"}),
        "text": text(txt, CONTEXT, resblock_linears("model.text_encoder."), TEXT_OUTPUTS,
                     tower_points=("embed", "input", "output")),
    }


FAMILY = register_family(Family(
    name="viclip", sizes=tuple(SIZES), default_size="ViT-B/16",
    default_weights=lambda size: HUB[size], build=Lazy("composer.backbones.viclip:build"), towers=("visual", "text"),
    summary="ViCLIP (InternVid): CLIP ViT with joint space-time attention over [CLS, (n t)] tokens, our own "
            "implementation loading the official .pth or safetensors strictly; text context 32",
    shapes=shapes,
))
