"""Chinese-CLIP's text tower through transformers, declared (the modules: composer/backbones/chinese_clip.py)."""

from __future__ import annotations

from composer.backbones.families.towers import Dims, bert_linears, text, tiny
from composer.backbones.registry import Family, Request, register_family
from composer.lazy import Lazy

HUB = {"RoBERTa-wwm-ext-base": "OFA-Sys/chinese-clip-vit-base-patch16",
       "RoBERTa-wwm-ext-large": "OFA-Sys/chinese-clip-vit-large-patch14"}
CONFIGS = {"RoBERTa-wwm-ext-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                        intermediate_size=3072, projection=512),
           "RoBERTa-wwm-ext-large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                         intermediate_size=4096, projection=768)}
VOCAB_SIZE, CONTEXT = 21128, 52


def shapes(request: Request) -> dict:
    c = CONFIGS[request.size]
    dims = Dims(c["hidden_size"], c["num_hidden_layers"], c["num_attention_heads"], c["projection"])
    dims = tiny(dims, keeps_out=True) if request.tiny else dims  # the projection keeps its width
    return {"text": text(dims, CONTEXT, bert_linears("model.encoder.layer", "self"), {
        "": "[CLS] token through the projection", "tokens": "every token through the projection",
        "word_mask": "1 at the words of each text ([CLS], [SEP] and padding are 0)"})}


FAMILY = register_family(Family(
    name="chinese_clip", sizes=tuple(CONFIGS), default_size="RoBERTa-wwm-ext-base",
    default_weights=lambda size: HUB[size], build=Lazy("composer.backbones.chinese_clip:build"), towers=("text",),
    summary="Chinese-CLIP text tower (RoBERTa-wwm-ext, BERT post-norm blocks) through transformers, [CLS] "
            "through the projection; context 52",
    shapes=shapes,
))
