"""The centre frame of each window: [B, T, W, 3, H, W'] -> [B, T, 3, H, W'] (TDS-CLIP's frozen branch sees
only the centre of each 5-frame window, Wang et al. 2024, Sec. 3.1).
"""

from __future__ import annotations

from composer.components.registry import Kind, NoParams, register
from composer.lazy import Lazy
from composer.tensor_types import TType, match


def infer(p: NoParams, ins: list[TType]) -> TType:
    b = match(ins[0], ("B", "T", "W", 3, "H", "X"), what="windows")
    return TType((b["B"], b["T"], 3, b["H"], b["X"]))


register(Kind(
    name="center_frame", summary="[B, T, W, 3, H, W] windows -> [B, T, 3, H, W] centre frames",
    params=NoParams, inputs=("windows",), infer=infer,
    paper="TDS-CLIP (Wang et al., arXiv 2408.10688), Sec. 3.1",
    build=Lazy("composer.components.video.center_frame_module:build"),
    trains=False,
))
