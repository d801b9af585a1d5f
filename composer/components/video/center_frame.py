"""The centre frame of each window: [B, T, W, 3, H, W'] -> [B, T, 3, H, W'] (TDS-CLIP's frozen branch sees
only the centre of each 5-frame window, Wang et al. 2024, Sec. 3.1)."""

from __future__ import annotations

import torch
from torch import nn

from composer.components.registry import Kind, NoParams, register
from composer.tensor_types import TType, match


class CenterFrame(nn.Module):
    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return windows[:, :, windows.shape[2] // 2]


def infer(p: NoParams, ins: list[TType]) -> TType:
    b = match(ins[0], ("B", "T", "W", 3, "H", "X"), what="windows")
    return TType((b["B"], b["T"], 3, b["H"], b["X"]))


register(Kind(
    name="center_frame", summary="[B, T, W, 3, H, W] windows -> [B, T, 3, H, W] centre frames",
    params=NoParams, build=lambda p, info: CenterFrame(), inputs=("windows",), infer=infer,
    paper="TDS-CLIP (Wang et al., arXiv 2408.10688), Sec. 3.1",
))
