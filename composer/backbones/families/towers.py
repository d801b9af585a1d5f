"""Tower shapes by layout: the rules every family's towers follow, with the widths a family declares per size.

Tiny variants (docs/design-notes.md, "`tiny` keeps the depth and the output widths") shrink the inner width to
64 with two heads and an MLP of 256; `tiny` gives the dimensions a family's tiny variant has."""

from __future__ import annotations

from dataclasses import dataclass

from composer.backbones.shape import BLOCK_POINTS, Output, TowerShape, per_block
from composer.tensor_types import TType

TINY_WIDTH, TINY_HEADS = 64, 2


@dataclass(frozen=True)
class Dims:
    """A tower's widths at one size."""

    width: int
    depth: int
    heads: int
    out_dim: int

    @property
    def mlp(self) -> int:
        return 4 * self.width


def tiny(dims: Dims, keeps_out: bool) -> Dims:
    """The tiny variant: the same depth, inner width 64 and two heads; the output width kept where it is a
    joint embedding (`keeps_out`), else the inner width."""
    return Dims(TINY_WIDTH, dims.depth, TINY_HEADS, dims.out_dim if keeps_out else TINY_WIDTH)


def _points(fused_qkv: bool) -> tuple[str, ...]:
    return tuple(p for p in BLOCK_POINTS if fused_qkv or p != "attn.qkv")


def _grid(t: TType, patch: int) -> int:
    return (t.shape[-2] // patch) * (t.shape[-1] // patch)


def frames_visual(d: Dims, patch: int, linears: dict[str, str], summaries: dict[str, str]) -> TowerShape:
    """A per-frame image tower (CLIP, DINOv2): a clip runs as B*T images with one class token."""
    types = {"": lambda t: TType(t.shape[:2] + (d.out_dim,)), "cls": lambda t: TType(t.shape[:2] + (d.width,)),
             "tokens": lambda t: TType(t.shape[:2] + (_grid(t, patch), d.width))}
    return TowerShape("visual", "frames", d.width, d.depth, d.heads, d.out_dim, d.mlp, _points("attn.qkv" in linears),
                      {p: per_block(path, d.depth) for p, path in linears.items()},
                      {k: Output(s, types[k]) for k, s in summaries.items()}, lambda t: 1 + _grid(t, patch),
                      patch=patch)


def video_visual(d: Dims, patch: int, linears: dict[str, str], summaries: dict[str, str], prefix: int = 1,
                 tubelet: int = 1, fixed_frames: int | None = None) -> TowerShape:
    """A video tower attending jointly over space and time: `prefix` class tokens, then a token per patch and
    per `tubelet` frames."""
    def tokens(t: TType) -> int:
        return prefix + _grid(t, patch) * (t.shape[1] // tubelet)

    types = {"": lambda t: TType((t.shape[0], d.out_dim)), "cls": lambda t: TType((t.shape[0], d.width)),
             "tokens": lambda t: TType((t.shape[0], tokens(t), d.width))}
    return TowerShape("visual", "video", d.width, d.depth, d.heads, d.out_dim, d.mlp, _points("attn.qkv" in linears),
                      {p: per_block(path, d.depth) for p, path in linears.items()},
                      {k: Output(s, types[k]) for k, s in summaries.items()}, tokens, prefix=prefix, patch=patch,
                      fixed_frames=fixed_frames)


def text(d: Dims, context: int, linears: dict[str, str], summaries: dict[str, str],
         tower_points: tuple[str, ...] = ("input", "output")) -> TowerShape:
    """A text tower over `context` tokens: texts str[..., N] in, embeddings at the end token (or [CLS]) out."""
    types = {"": lambda t: TType(t.shape + (d.out_dim,)), "tokens": lambda t: TType(t.shape + (context, d.out_dim)),
             "word_mask": lambda t: TType(t.shape + (context,))}
    return TowerShape("text", "text", d.width, d.depth, d.heads, d.out_dim, d.mlp, _points("attn.qkv" in linears),
                      {p: per_block(path, d.depth) for p, path in linears.items()},
                      {k: Output(s, types[k]) for k, s in summaries.items()}, lambda t: context, input_dtype="str",
                      tower_points=tower_points)


def resblock_linears(prefix: str) -> dict[str, str]:
    """The linears of an open_clip transformer's blocks (CLIP, ViCLIP); attn.qkv is the Linear composer binds."""
    return {"attn.qkv": f"{prefix}transformer.resblocks.{{i}}.attn.qkv",
            "attn.out": f"{prefix}transformer.resblocks.{{i}}.attn.out_proj",
            "mlp.fc1": f"{prefix}transformer.resblocks.{{i}}.mlp.c_fc",
            "mlp.fc2": f"{prefix}transformer.resblocks.{{i}}.mlp.c_proj"}


def bert_linears(prefix: str, attention: str) -> dict[str, str]:
    """The linears of a BERT-layout block (transformers: VideoMAE, Chinese-CLIP's RoBERTa)."""
    return {"attn.q": f"{prefix}.{{i}}.attention.{attention}.query",
            "attn.k": f"{prefix}.{{i}}.attention.{attention}.key",
            "attn.v": f"{prefix}.{{i}}.attention.{attention}.value",
            "attn.out": f"{prefix}.{{i}}.attention.output.dense",
            "mlp.fc1": f"{prefix}.{{i}}.intermediate.dense", "mlp.fc2": f"{prefix}.{{i}}.output.dense"}
