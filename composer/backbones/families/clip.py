"""CLIP through open_clip, declared: sizes, towers, the open_clip weight tags and the activation each was
trained with (the modules: composer/backbones/clip.py)."""

from __future__ import annotations

from pathlib import Path

from composer.backbones.families.towers import Dims, frames_visual, resblock_linears, text, tiny
from composer.backbones.registry import Family, Request, register_family
from composer.backbones.weights import is_local_path, is_torchscript
from composer.errors import Loc, SpecError
from composer.lazy import Lazy

SIZES = {"ViT-B/16": "ViT-B-16", "ViT-B/32": "ViT-B-32", "ViT-L/14": "ViT-L-14"}  # ours -> open_clip's
# (visual, text) widths per size, and the visual patch
DIMS = {"ViT-B/16": (Dims(768, 12, 12, 512), Dims(512, 12, 8, 512), 16),
        "ViT-B/32": (Dims(768, 12, 12, 512), Dims(512, 12, 8, 512), 32),
        "ViT-L/14": (Dims(1024, 24, 16, 768), Dims(768, 12, 12, 768), 14)}
CONTEXT = 77
ACTIVATIONS = ("quick_gelu", "gelu")
OPENAI_KEYS = {"input_resolution", "context_length", "vocab_size"}  # tensors only OpenAI's own archives hold
# open_clip's weight tags per size and whether each was trained with QuickGELU (open_clip's `quick_gelu`)
_QUICK = ("openai", "dfn2b", "metaclip_400m", "metaclip_fullcc")
TAGS = {
    "ViT-B/16": {t: t in _QUICK for t in (
        "openai", "laion400m_e31", "laion400m_e32", "laion2b_s34b_b88k", "datacomp_xl_s13b_b90k",
        "datacomp_l_s1b_b8k", "commonpool_l_clip_s1b_b8k", "commonpool_l_laion_s1b_b8k",
        "commonpool_l_image_s1b_b8k", "commonpool_l_text_s1b_b8k", "commonpool_l_basic_s1b_b8k",
        "commonpool_l_s1b_b8k", "dfn2b", "metaclip_400m", "metaclip_fullcc")},
    "ViT-B/32": {t: t in _QUICK or t.startswith("laion400m") for t in (
        "openai", "laion400m_e31", "laion400m_e32", "laion2b_e16", "laion2b_s34b_b79k", "datacomp_xl_s13b_b90k",
        "datacomp_m_s128m_b4k", "commonpool_m_clip_s128m_b4k", "commonpool_m_laion_s128m_b4k",
        "commonpool_m_image_s128m_b4k", "commonpool_m_text_s128m_b4k", "commonpool_m_basic_s128m_b4k",
        "commonpool_m_s128m_b4k", "datacomp_s_s13m_b4k", "commonpool_s_clip_s13m_b4k",
        "commonpool_s_laion_s13m_b4k", "commonpool_s_image_s13m_b4k", "commonpool_s_text_s13m_b4k",
        "commonpool_s_basic_s13m_b4k", "commonpool_s_s13m_b4k", "metaclip_400m", "metaclip_fullcc")},
    "ViT-L/14": {t: t in _QUICK for t in (
        "openai", "laion400m_e31", "laion400m_e32", "laion2b_s32b_b82k", "datacomp_xl_s13b_b90k",
        "commonpool_xl_clip_s13b_b90k", "commonpool_xl_laion_s13b_b90k", "commonpool_xl_s13b_b90k",
        "metaclip_400m", "metaclip_fullcc", "dfn2b", "dfn2b_s39b")},
}


def shapes(request: Request) -> dict:
    visual, txt, patch = DIMS[request.size]
    if request.tiny:
        visual, txt = tiny(visual, keeps_out=True), tiny(txt, keeps_out=True)
    return {
        "visual": frames_visual(visual, patch, resblock_linears("model.visual."), {
            "": "per-frame embedding (class token, ln_post, proj)",
            "cls": "per-frame class token after ln_post, before proj",
            "tokens": "per-frame patch tokens after ln_post"}),
        "text": text(txt, CONTEXT, resblock_linears("model."), TEXT_OUTPUTS, tower_points=("embed", "input", "output")),
    }


# open_clip's text tower (CLIP's and ViCLIP's); `embed` is the token embeddings, before positions (CoOp)
TEXT_OUTPUTS = {"": "text embedding at the end-of-text token (ln_final, projection)",
                "tokens": "every token's embedding (ln_final, projection)",
                "word_mask": "1 at the words of each text (between the start and end tokens), else 0"}


def is_openai_release(weights: str) -> bool:
    """Whether a local file is OpenAI's own CLIP release: OpenAI ships CLIP as TorchScript archives whose
    module keeps input_resolution, context_length and vocab_size as tensors, and open_clip builds every
    such file with QuickGELU (open_clip.openai.load_openai_model). A state dict does not say how it was
    trained, whoever saved it, and neither does a file name. (torch is imported only to read such an archive.)"""
    path = Path(weights).expanduser()
    if not path.is_file() or not is_torchscript(path):
        return False
    import torch  # lazy: the check path (validate, kinds, schema) imports no torch

    return OPENAI_KEYS <= set(torch.jit.load(str(path), map_location="cpu").state_dict())


def activation(request: Request, loc: Loc | None = None, name: str = "clip") -> str:
    """QuickGELU or GELU: what the weights were trained with, from an explicit source only: the weight
    tag's open_clip entry, the file's provenance (OpenAI's release), or the spec's `activation`. A local
    file that none of these settles stops the build: the wrong activation runs, but silently stops
    matching the paper. A tag open_clip does not have for the size is refused here too."""
    tag, stated = request.weights, request.activation
    if tag is None:  # random weights (tiny, `weights: random`): nothing to match
        return stated or "gelu"
    if not is_local_path(tag):
        if tag not in TAGS[request.size]:
            raise SpecError(f"open_clip has no weights '{tag}' for {request.size}", loc,
                            expected=", ".join(TAGS[request.size]))
        known, source = ("quick_gelu" if TAGS[request.size][tag] else "gelu"), f"open_clip's entry for '{tag}'"
    elif is_openai_release(tag):
        known, source = "quick_gelu", f"{tag} is OpenAI's TorchScript release, which"
    elif stated is not None:
        return stated
    else:
        raise SpecError(f"cannot tell which activation the CLIP weights {tag} were trained with", loc,
                        expected="activation: quick_gelu (OpenAI's CLIP and other QuickGELU models) or activation: "
                        "gelu (most LAION and DataComp models)",
                        hint=f"state it in the backbone (e.g. --set backbones.{name}.activation=quick_gelu), or "
                        "name the weights by their open_clip tag (e.g. weights: openai) to take them from the "
                        "Hugging Face cache; of local files, only OpenAI's TorchScript release says it itself")
    if stated is not None and stated != known:
        raise SpecError(f"activation: {stated} contradicts the weights: {source} says {known}", loc,
                        hint="remove 'activation' (the weights decide it) or use other weights")
    return known


FAMILY = register_family(Family(
    name="clip", sizes=tuple(SIZES), default_size="ViT-B/16",
    default_weights=lambda size: "openai",
    build=Lazy("composer.backbones.clip:build"), towers=("visual", "text"),
    summary="CLIP ViT (OpenAI or LAION weights) through open_clip; the visual tower sees a clip as B*T frames",
    activations=ACTIVATIONS, shapes=shapes, check=lambda request, loc, name: activation(request, loc, name) and None,
    peft=Lazy("composer.backbones.clip:PEFT"),
))
