"""The TD-Adapter of TDS-CLIP (Wang et al., arXiv 2408.10688, Sec. 3.3): local temporal differences as a
channel gate.  b = BN(Conv1x1(x) -> c/16);  d = b - maxpool_t(b);  y = d/2 + mean_c(d)/2;
gate = sigmoid(BN(Conv1x1(y) -> c)) - 1/2;  out = x + x * gate."""

from __future__ import annotations

import torch
from torch import nn


class TDAdapter(nn.Module):
    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.conv1 = nn.Conv2d(channels, hidden, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.conv2 = nn.Conv2d(hidden, channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.pool = nn.MaxPool3d((3, 1, 1), stride=1, padding=(1, 0, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, T, H, W]
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)
        feat = self.bn1(self.conv1(frames))
        feat = feat.view(b, t, -1, h, w).transpose(1, 2)  # [B, c', T, H, W]
        diff = feat - self.pool(feat)
        y = 0.5 * diff + 0.5 * diff.mean(dim=1, keepdim=True)
        y = y.transpose(1, 2).reshape(b * t, -1, h, w)
        gate = torch.sigmoid(self.bn2(self.conv2(y))) - 0.5
        gate = gate.view(b, t, c, h, w).transpose(1, 2)
        return x + x * gate
