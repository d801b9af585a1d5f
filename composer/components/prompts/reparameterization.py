"""Reparameterisation encoders beta for temporal prompts: P_R = beta(P) + P (Deng et al., Electronics 2024,
"Dual Semantic Supervision and Temporal Prompt Reparameterization", Eq. 12 and Table 4).

Every encoder maps prompts [B, T, P, D] (T frames, P prompts per frame) to the same shape through a
bottleneck of width r: LayerNorm, Linear(D -> r), a mixing block, GELU, Linear(r -> D). The mixing
block is what Table 4 varies ("ST-Block"):
    mlp        nothing (a per-token MLP)
    lstm       an LSTM over time, for each prompt
    transformer  two transformer layers over all T*P prompts of a clip
    tada       TAdaConv: a conv over prompts whose weights are recalibrated per frame from a temporal
               context (Huang et al., ICLR 2022)
    c3d        one 3x3 conv over (time, prompts)
    r2plus1d   a 1x3 conv over prompts then a 3x1 conv over time (Tran et al., CVPR 2018) - the default
The paper gives neither r nor the kernel sizes; r = 400 makes the 8-frame model 54.5M trainable
parameters against the reported 54.2M (docs/reproduction.md). With the residual on, the last Linear
starts at zero so P_R = P at initialisation.
"""

from __future__ import annotations

import torch
from torch import nn

from composer.components.prompts.temporal_prompts import Encoder


class _Conv(nn.Module):
    """2D convolutions over [B, r, T, P] for c3d and r2plus1d."""

    def __init__(self, width: int, kind: str) -> None:
        super().__init__()
        if kind == "c3d":
            self.convs = nn.Sequential(nn.Conv2d(width, width, (3, 3), padding=(1, 1)))
        else:
            self.convs = nn.Sequential(nn.Conv2d(width, width, (1, 3), padding=(0, 1)),
                                       nn.Conv2d(width, width, (3, 1), padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, T, P, r]
        return self.convs(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class _LSTM(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(width, width, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, p, r = x.shape
        y, _ = self.lstm(x.permute(0, 2, 1, 3).reshape(b * p, t, r))
        return y.reshape(b, p, t, r).permute(0, 2, 1, 3)


class _Transformer(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        heads = max(1, width // 64) if width % 64 == 0 else 1
        layer = nn.TransformerEncoderLayer(width, heads, 2 * width, 0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.layers = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, p, r = x.shape
        return self.layers(x.reshape(b, t * p, r)).reshape(b, t, p, r)


class _TAda(nn.Module):
    """A conv over prompts whose kernel is scaled per frame by alpha_t = 1 + g(temporal context)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(width, width, 3, padding=1)
        self.context = nn.Conv1d(width, width, 3, padding=1)
        nn.init.zeros_(self.context.weight)
        nn.init.zeros_(self.context.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, p, r = x.shape
        alpha = 1 + self.context(x.mean(dim=2).transpose(1, 2)).transpose(1, 2)  # [B, T, r]
        y = self.conv(x.reshape(b * t, p, r).transpose(1, 2)).transpose(1, 2).reshape(b, t, p, r)
        bias = self.conv.bias.view(1, 1, 1, r)
        return (y - bias) * alpha.unsqueeze(2) + bias


class Reparameterization(nn.Module):
    def __init__(self, width: int, bottleneck: int, encoder: Encoder, residual: bool) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.down = nn.Linear(width, bottleneck)
        self.mix = {"mlp": lambda: nn.Identity(), "lstm": lambda: _LSTM(bottleneck),
                    "transformer": lambda: _Transformer(bottleneck), "tada": lambda: _TAda(bottleneck),
                    "c3d": lambda: _Conv(bottleneck, "c3d"), "r2plus1d": lambda: _Conv(bottleneck, "r2plus1d")}[encoder]()
        self.up = nn.Linear(bottleneck, width)
        self.residual = residual
        if residual:
            nn.init.zeros_(self.up.weight)
            nn.init.zeros_(self.up.bias)

    def forward(self, prompts: torch.Tensor) -> torch.Tensor:  # [B, T, P, D]
        y = self.up(torch.nn.functional.gelu(self.mix(self.down(self.norm(prompts)))))
        return prompts + y if self.residual else y
