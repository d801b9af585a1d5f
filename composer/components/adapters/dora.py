"""DoRA through peft: W' = m * (W + s B A) / ||W + s B A||_col (Liu et al., ICML 2024, Eq. 5).

The magnitude m starts at the column norms of W and B at zero, so the layer starts unchanged. Same
injection as LoRA (lora.py) with peft's `use_dora=True`.
"""

from __future__ import annotations

from composer.components.adapters.lora import DELTA_POINTS, LoraParams, inject
from composer.components.registry import Kind, register


class DoraParams(LoraParams):
    pass


register(Kind(
    name="dora",
    summary="weight-decomposed low-rank update (magnitude and direction) on a linear, through peft",
    params=DoraParams, build=lambda p, backbone, paths, name: inject(p, backbone, paths, name, dora=True),
    paper="DoRA (Liu et al., ICML 2024), Eq. 5",
    uses=("weight_delta",), points=DELTA_POINTS,
))
