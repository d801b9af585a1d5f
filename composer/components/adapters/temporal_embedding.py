"""Temporal position embedding for a per-frame tower: a learnable [T, D] added to every token of frame t
at the tower's input (the spatio-temporal positional encoding of Eq. 1 in Deng et al., Electronics 2024;
Vita-CLIP's `time_embed`). Starts at zero, so the tower starts unchanged.
"""

from __future__ import annotations

from composer.components.registry import Kind, NoParams, SiteInfo, register
from composer.lazy import Lazy


def check(p: NoParams, site: SiteInfo) -> None:
    if site.layout != "frames":
        raise ValueError("temporal_embedding needs a per-frame visual tower")


register(Kind(
    name="temporal_embedding",
    summary="learnable per-frame position embedding added to every token at a per-frame tower's input",
    params=NoParams, uses=("sequential",), points=("input",),
    paper="Deng et al., Electronics 2024, Eq. 1; Vita-CLIP (Wasim et al., CVPR 2023)",
    build=Lazy("composer.components.adapters.temporal_embedding_module:build"),
    check=check,
    trains=True,
))
