"""Chinese-CLIP's text tower through transformers: RoBERTa-wwm-ext (BERT layout, post-norm blocks) with
its projection to the joint space, pooled at [CLS] (Yang et al., 2022, "Chinese CLIP").

Only the text tower is built; the released ChineseCLIPModel checkpoints are read and their
`text_model.*` and `text_projection.*` tensors loaded strictly. The tokenizer is BERT's WordPiece with
the checkpoint's vocab. The tiny variant uses the same classes and a generated character vocabulary
(every CJK ideograph plus BERT's special tokens), so tests and the offline demo need no download.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn
from transformers import BertTokenizer, ChineseCLIPTextConfig, ChineseCLIPTextModel

from composer.backbones.backbone import Backbone
from composer.backbones.blocks import BlockParts, PointHooks, RunContext
from composer.backbones.families.chinese_clip import CONFIGS, CONTEXT, HUB, VOCAB_SIZE  # noqa: F401
from composer.backbones.registry import Request
from composer.backbones.tower import Output, Tower
from composer.backbones.weights import fetch, is_local_path, local_file, weights_file
from composer.errors import SpecError
from composer.tensor_types import TType

SPECIALS = ["[PAD]"] + [f"[unused{i}]" for i in range(1, 100)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def tiny_vocab() -> Path:
    """A character vocabulary for the tiny tower: BERT's special tokens, ASCII, then CJK ideographs."""
    path = Path.home() / ".cache" / "composer" / "tiny-chinese-vocab.txt"
    if not path.exists():
        words = SPECIALS + [chr(c) for c in range(33, 127)]
        words += [chr(c) for c in range(0x4E00, 0x4E00 + VOCAB_SIZE - len(words))]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text("\n".join(words) + "\n", encoding="utf-8")
        tmp.replace(path)
    return path


class ChineseText(Tower):
    name, layout, input_dtype = "text", "text", "str"

    def __init__(self, backbone: "ChineseClipBackbone") -> None:
        m = backbone.model
        cfg = m.config
        super().__init__(backbone, cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads,
                         backbone.projection.out_features)
        self.bert, self.projection, self.tokenizer = m, backbone.projection, backbone.tokenizer
        self.outputs = {
            "": Output("[CLS] token through the projection", lambda t: TType(t.shape + (self.out_dim,))),
            "tokens": Output("every token through the projection", lambda t: TType(t.shape + (CONTEXT, self.out_dim))),
            "word_mask": Output("1 at the words of each text ([CLS], [SEP] and padding are 0)",
                                lambda t: TType(t.shape + (CONTEXT,))),
        }

    def tokens(self, in_type: TType) -> int:
        return CONTEXT

    def context(self, texts) -> RunContext:
        return RunContext(batch=len(texts), frames=1, layout="text", prefix=1, tower="text")

    def embed(self, texts, ctx, hooks: PointHooks):
        ids = _tokenize(self.tokenizer, tuple(texts)).to(self.bert.embeddings.word_embeddings.weight.device)
        ctx.state["valid"] = ids != self.tokenizer.pad_token_id
        ctx.state["words"] = ctx.state["valid"] & (ids != self.tokenizer.cls_token_id) & (ids != self.tokenizer.sep_token_id)
        x = self.bert.embeddings(input_ids=ids)
        mask = ctx.state["valid"][:, None, None, :]  # [C, 1, 1, L]: every query sees the non-padding keys
        return x, mask

    def parts(self, index: int) -> BlockParts:
        layer = self.bert.encoder.layer[index]
        attn = layer.attention
        return BlockParts(norm1=attn.output.LayerNorm, norm2=layer.output.LayerNorm, q=attn.self.query,
                          k=attn.self.key, v=attn.self.value, out=attn.output.dense, fc1=layer.intermediate.dense,
                          act=layer.intermediate.intermediate_act_fn, fc2=layer.output.dense,
                          heads=self.heads, post_norm=True)

    def finish(self, x, ctx):
        tokens = self.projection(x)
        return {"": tokens[:, 0], "tokens": tokens, "word_mask": ctx.state["words"].to(tokens.dtype)}

    def linear_path(self, index, point):
        names = {"attn.q": "attention.self.query", "attn.k": "attention.self.key", "attn.v": "attention.self.value",
                 "attn.out": "attention.output.dense", "mlp.fc1": "intermediate.dense", "mlp.fc2": "output.dense"}
        return f"model.encoder.layer.{index}.{names[point]}" if point in names else None

    def point_dims(self, point: str) -> tuple[int, int]:
        return {"mlp.fc1": (self.width, self.mlp_width), "mlp.fc2": (self.mlp_width, self.width)}.get(
            point, (self.width, self.width))


@functools.lru_cache(maxsize=64)
def _tokenize(tokenizer, texts: tuple[str, ...]) -> torch.Tensor:
    return tokenizer(list(texts), padding="max_length", truncation=True, max_length=CONTEXT,
                     return_tensors="pt")["input_ids"]


class ChineseClipBackbone(Backbone):
    family = "chinese_clip"

    def __init__(self, request: Request, model: nn.Module, projection: nn.Linear, tokenizer) -> None:
        super().__init__(request, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
        self.model, self.projection, self.tokenizer = model, projection, tokenizer
        self.towers = {"text": ChineseText(self)}


def _config(request: Request) -> tuple[ChineseCLIPTextConfig, int]:
    c = dict(CONFIGS[request.size])
    projection = c.pop("projection")
    if request.tiny:
        c.update(hidden_size=64, num_attention_heads=2, intermediate_size=256)  # the projection keeps its width
    return ChineseCLIPTextConfig(vocab_size=VOCAB_SIZE, max_position_embeddings=512, type_vocab_size=2, **c), projection


def _load(model: nn.Module, projection: nn.Linear, path: str, loc) -> None:
    """Strictly load the text tower out of a ChineseCLIPModel checkpoint (safetensors or a torch file)."""
    if path.endswith(".safetensors"):
        state = load_file(path)
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state)
    text = {k[len("text_model."):]: v for k, v in state.items() if k.startswith("text_model.")}
    proj = {k[len("text_projection."):]: v for k, v in state.items() if k.startswith("text_projection.")}
    missing, unexpected = model.load_state_dict(text, strict=False)
    missing = [m for m in missing if not m.endswith(("position_ids", "token_type_ids"))]
    if missing or unexpected or not proj:
        raise SpecError(f"{path} does not hold a Chinese-CLIP text tower that fits: missing {missing[:5]}, "
                        f"unexpected {unexpected[:5]}" + ("" if proj else ", no text_projection"), loc)
    projection.load_state_dict(proj)


def build(request: Request, loc=None, name: str = "chinese_clip") -> ChineseClipBackbone:
    config, out = _config(request)
    with torch.device(request.device):
        model = ChineseCLIPTextModel(config, add_pooling_layer=False)
        projection = nn.Linear(config.hidden_size, out, bias=False)
    tag = request.weights
    if request.tiny or tag is None or not request.load:  # structure only: any vocabulary of the right size
        tokenizer = BertTokenizer(str(tiny_vocab()), do_lower_case=True)
    elif is_local_path(tag):
        path = local_file(tag, f"Chinese-CLIP {request.size}", loc)
        tokenizer = BertTokenizer(str(path.parent / "vocab.txt")) if (path.parent / "vocab.txt").exists() else None
        if tokenizer is None:
            raise SpecError(f"no vocab.txt beside {path}: the tokenizer needs it", loc)
    else:
        tokenizer = fetch(f"Chinese-CLIP {request.size} tokenizer", f"'{tag}'",
                          lambda: BertTokenizer.from_pretrained(tag), name, loc)
    if request.load:
        path = weights_file(tag, f"Chinese-CLIP {request.size}", "pytorch_model.bin", name, loc)
        _load(model, projection, path, loc)
    return ChineseClipBackbone(request, model.train(False), projection, tokenizer)
