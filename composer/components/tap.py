"""A tap: read what flows through a site, for a component downstream (side networks read backbone
layers this way). Detached by default, so no gradient can reach the backbone through it."""

from __future__ import annotations

from pydantic import Field

from composer.backbones.shape import BLOCK_POINTS, TOWER_POINTS
from composer.components.registry import Kind, Params, register


class TapParams(Params):
    detach: bool = Field(True, description="cut the gradient (read-only view of the backbone)")


register(Kind(
    name="tap",
    summary="a read-only view of a site; over several blocks it stacks them as a layer axis",
    params=TapParams, build=None, uses=("tap",), points=BLOCK_POINTS + TOWER_POINTS,
    paper="side-tuning taps (LST, Sung et al., NeurIPS 2022, Sec. 3)",
))
