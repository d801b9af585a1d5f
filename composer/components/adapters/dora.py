"""DoRA through peft: W' = m * (W + s B A) / ||W + s B A||_col (Liu et al., ICML 2024, Eq. 5).

The magnitude m starts at the column norms of W and B at zero, so the layer starts unchanged. LoRA's
config (lora.py) with peft's `use_dora=True`.
"""

from __future__ import annotations

from typing import Any

from composer.components.adapters.lora import DELTA_POINTS, LoraParams, config
from composer.components.registry import Kind, SiteInfo, register


class DoraParams(LoraParams):
    pass


def build(p: DoraParams, site: SiteInfo) -> Any:
    return config(p, dora=True)


register(Kind(
    name="dora",
    summary="weight-decomposed low-rank update (magnitude and direction) on a linear, through peft",
    params=DoraParams, build=build,
    paper="DoRA (Liu et al., ICML 2024), Eq. 5",
    uses=("weight_delta",), points=DELTA_POINTS,
    trains=True,
))
