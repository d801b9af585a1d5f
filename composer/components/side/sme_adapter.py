"""The SME-Adapter stem of TDS-CLIP (Wang et al., arXiv 2408.10688, Sec. 3.4): the side network's input is
the centre frame's 3D-conv stem plus half the stem of the W-1 frame differences of its window:
    x = BN(Conv3d(frame_c)) + 0.5 * BN(Conv3d([f2-f1, f3-f2, ..., fW - f(W-1)]))
Both convs: kernel (3, p, p), stride (1, p, p), padding (1, 1, 1)."""

from __future__ import annotations

import torch
from torch import nn


def stem(in_channels: int, width: int, patch: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(in_channels, width, (3, patch, patch), stride=(1, patch, patch), padding=(1, 1, 1)),
                         nn.BatchNorm3d(width))


class SideStem(nn.Module):
    def __init__(self, width: int, patch: int, window: int, motion: bool) -> None:
        super().__init__()
        self.rgb = stem(3, width, patch)
        self.motion = stem(3 * (window - 1), width, patch) if motion and window > 1 else None

    def forward(self, windows: torch.Tensor) -> torch.Tensor:  # [B, T, W, 3, H, W], normalised
        centre = windows[:, :, windows.shape[2] // 2].transpose(1, 2)  # [B, 3, T, H, W]
        x = self.rgb(centre)
        if self.motion is not None:
            diffs = (windows[:, :, 1:] - windows[:, :, :-1]).flatten(2, 3).transpose(1, 2)  # [B, 3(W-1), T, H, W]
            x = x + 0.5 * self.motion(diffs)
        return x  # [B, d, T, h, w]
