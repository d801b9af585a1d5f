"""What a tower is, as data: widths, depth, heads, points, linear paths and output types, without torch.

`composer validate` (and every check before a build) reads these instead of a built tower, so checking a
spec imports no torch, open_clip, timm or transformers. A family declares them per size
(composer/backbones/families/); tests/test_shapes.py builds every family (tiny for real, full sizes on the
meta device) and holds the declared shapes to `shape_of` the built towers, so the two cannot drift. A
family from another package that declares none is checked through `shape_of` its meta-device build.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from composer.tensor_types import TType

BLOCK_POINTS = ("input", "tokens", "attn", "attn.qkv", "attn.q", "attn.k", "attn.v", "attn.out",
                "mlp", "mlp.fc1", "mlp.fc2", "block")
TOWER_POINTS = ("embed", "input", "output")


@dataclass(frozen=True)
class Output:
    """A named output of a tower call and how its type follows from the input's type."""

    summary: str
    type_of: Any  # (TType) -> TType


@dataclass(frozen=True)
class TowerShape:
    """One tower's structure: what the graph checks, shape inference and an attachment's builder read."""

    name: str
    layout: str  # "frames", "video" or "text" (see blocks.RunContext)
    width: int
    depth: int
    heads: int
    out_dim: int
    mlp_width: int
    points: tuple[str, ...]  # the block points it honours
    linears: dict[str, tuple[str, ...]]  # block point -> module path of its nn.Linear in each block
    outputs: dict[str, Output]  # "" is the default output
    tokens_of: Any  # (input TType) -> tokens per sequence its blocks run on
    input_dtype: str = "float"
    tower_points: tuple[str, ...] = ("input", "output")
    prefix: int = 1
    patch: int | None = None
    fixed_frames: int | None = None

    def tokens(self, in_type: TType) -> int:
        return self.tokens_of(in_type)

    def linear_path(self, index: int, point: str) -> str | None:
        """Module path (inside the backbone module) of the linear at a point, for weight deltas."""
        paths = self.linears.get(point)
        return paths[index] if paths is not None else None

    def point_dims(self, point: str) -> tuple[int, int]:
        """(input width, output width) at a block point."""
        d, hidden = self.width, self.mlp_width
        return {"attn.qkv": (d, 3 * d), "mlp.fc1": (d, hidden), "mlp.fc2": (hidden, d)}.get(point, (d, d))

    def tap_type(self, in_type: TType, layers: int, tokens: int | str, width: int) -> TType:
        if self.layout == "frames":
            return TType((in_type.shape[0], in_type.shape[1], layers, tokens, width), prefix=self.prefix)
        return TType((in_type.shape[0], layers, tokens, width), prefix=self.prefix)


def per_block(template: str, depth: int) -> tuple[str, ...]:
    """A linear's module path in each of `depth` blocks, from a template with {i} for the block index."""
    return tuple(template.format(i=i) for i in range(depth))


@dataclass(frozen=True)
class BackboneShape:
    """A backbone as the checks see it: what the spec and the run asked (a registry.Request) and its towers."""

    request: Any
    towers: dict[str, TowerShape]


def shape_of(tower: Any) -> TowerShape:
    """The shape a built tower (composer/backbones/tower.py) has: how a family without declared shapes (a
    plugin's) is checked, and what the declared shapes are held to."""
    depth = tower.depth
    linears = {p: tuple(tower.linear_path(i, p) for i in range(depth)) for p in tower.points
               if tower.linear_path(0, p) is not None}
    return TowerShape(name=tower.name, layout=tower.layout, width=tower.width, depth=depth, heads=tower.heads,
                      out_dim=tower.out_dim, mlp_width=tower.mlp_width, points=tuple(tower.points), linears=linears,
                      outputs=dict(tower.outputs), tokens_of=tower.tokens, input_dtype=tower.input_dtype,
                      tower_points=tuple(tower.tower_points), prefix=tower.prefix, patch=getattr(tower, "patch", None),
                      fixed_frames=tower.fixed_frames)
