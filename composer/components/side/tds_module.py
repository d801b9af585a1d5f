"""The modules of the `tds` kind (declared in tds.py, which names `build` here)."""

from __future__ import annotations

import torch
from torch import nn

from composer.components.registry import NodeInfo
from composer.components.side.sme_adapter import SideStem
from composer.components.side.td_adapter import TDAdapter
from composer.components.side.tds import STATS, TDSParams, _prefix
from composer.recompute import recompute as recomputed


def _shift(cls: torch.Tensor) -> torch.Tensor:
    """[B, T, d]: first half of the channels from frame t+1, second half from frame t-1 (zeros at the ends)."""
    half = cls.shape[-1] // 2
    out = torch.zeros_like(cls)
    out[:, :-1, :half] = cls[:, 1:, :half]
    out[:, 1:, half:] = cls[:, :-1, half:]
    return out


class SideBlock(nn.Module):
    def __init__(self, d: int, td: bool, reduction: int) -> None:
        super().__init__()
        self.bn_1 = nn.BatchNorm3d(d)
        self.conv = nn.Sequential(nn.Conv3d(d, d, 1), nn.Conv3d(d, d, (3, 1, 1), padding=(1, 0, 0), groups=d),
                                  nn.Conv3d(d, d, 1))
        self.td = TDAdapter(d, reduction) if td else nn.Identity()
        self.ln_1 = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, max(1, d // 64), batch_first=True)
        self.bn_2 = nn.BatchNorm3d(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        layers = 12
        nn.init.normal_(self.attn.in_proj_weight, std=d ** -0.5)
        nn.init.normal_(self.attn.out_proj.weight, std=d ** -0.5 * (2 * layers) ** -0.5)
        nn.init.normal_(self.mlp[0].weight, std=(2 * d) ** -0.5)
        nn.init.normal_(self.mlp[2].weight, std=d ** -0.5 * (2 * layers) ** -0.5)

    def _attention(self, tokens: torch.Tensor) -> torch.Tensor:
        y = self.ln_1(tokens)
        return self.attn(y[:, 1:], y, y, need_weights=False)[0]

    def forward(self, x: torch.Tensor, cls: torch.Tensor, pos: torch.Tensor, grid: tuple[int, int],
                recompute: bool = False) -> torch.Tensor:
        def run(fn, *args):
            return recomputed(fn, *args) if recompute and torch.is_grad_enabled() else fn(*args)

        b, t, n, d = x.shape  # patch tokens
        h, w = grid
        volume = x.permute(0, 3, 1, 2).reshape(b, d, t, h, w)
        volume = volume + self.td(run(self.conv, self.bn_1(volume)))
        x = volume.reshape(b, d, t, n).permute(0, 2, 3, 1)
        tokens = torch.cat([_shift(cls).unsqueeze(2), x + pos], dim=2).flatten(0, 1)  # [B*T, 1 + N, d]
        x = x + run(self._attention, tokens).view(b, t, n, d)
        volume = x.permute(0, 3, 1, 2).reshape(b, d, t, h, w)
        return x + run(self.mlp, self.bn_2(volume).reshape(b, d, t, n).permute(0, 2, 3, 1))


class TDSSideNetwork(nn.Module):
    def __init__(self, p: TDSParams, layers: int, width: int, window: int, grid: tuple[int, int],
                 prefix: int = 1) -> None:
        """`prefix`: the tapped tower's tokens before its patch tokens (the class token first, then registers)."""
        super().__init__()
        d = p.dim
        self.prefix = prefix
        mean, std = STATS[p.normalize]
        self.register_buffer("mean", torch.tensor(mean).view(1, 1, 1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 1, 1, 3, 1, 1), persistent=False)
        self.grid = grid
        self.stem = SideStem(d, p.patch, window, p.sme)
        self.norms = nn.ModuleList(nn.LayerNorm(width) for _ in range(layers))
        self.linears = nn.ModuleList(nn.Linear(width, d) for _ in range(layers))
        self.blocks = nn.ModuleList(SideBlock(d, p.td_adapter, p.reduction) for _ in range(layers))
        self.position = nn.Parameter(torch.randn(grid[0] * grid[1], d) * 0.01)
        self.post_bn = nn.BatchNorm3d(d)
        self.recompute = False  # set from the plan by the build

    def forward(self, windows: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
        windows = (windows - self.mean.to(windows.dtype)) / self.std.to(windows.dtype)
        x = self.stem(windows)  # [B, d, T, h, w]
        b, d, t, h, w = x.shape
        x = x.flatten(3).permute(0, 2, 3, 1)  # [B, T, N, d]
        for i, block in enumerate(self.blocks):
            z = self.linears[i](self.norms[i](taps[:, :, i].to(x.dtype)))  # [B, T, prefix + N, d]
            x = 0.5 * x + 0.5 * z[:, :, self.prefix:]
            x = block(x, z[:, :, 0], self.position.to(x.dtype), (h, w), self.recompute)
        volume = self.post_bn(x.permute(0, 3, 1, 2).reshape(b, d, t, h, w))
        return volume.mean(dim=(2, 3, 4))


def build(p: TDSParams, info: NodeInfo) -> TDSSideNetwork:
    windows, taps = info.in_types
    _, _, window, _, height, width_px = windows.shape
    _, _, layers, _, width = taps.shape
    return TDSSideNetwork(p, layers, width, window, (height // p.patch, width_px // p.patch), _prefix(taps))
