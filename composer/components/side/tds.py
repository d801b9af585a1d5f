"""TDS-CLIP's side network (Wang et al., arXiv 2408.10688, "TDS-CLIP: Temporal Difference Side Network").

A frozen CLIP sees the centre frame of each 5-frame window; taps give every layer's tokens, detached,
so no gradient ever reaches CLIP. The side network (width d = 320 for ViT-B/16) starts from the SME stem
(sme_adapter.py) and, for each CLIP layer i:
    z = Linear(LN(tap_i)) (768 -> d);  x = x/2 + z_patches/2;  x = SideBlock_i(x, z_cls)
SideBlock (AttnCBlock of the official code):
    1. x = x + TD(PW(DWt(PW(BN(x)))))    pointwise, depthwise temporal (3,1,1), pointwise, TD-Adapter
    2. the CLIP class token is shifted in time (half the channels from t+1, half from t-1)
    3. x = x + MHSA(q = LN(x + pos), k = v = LN([cls; x + pos]))    patches query, class token joins keys
    4. x = x + MLP(BN(x))   (d -> 4d -> d, GELU)
then BN and the mean over time and space: a [B, d] clip feature for a linear head.
The side network's own activations are nearly all of TDS-CLIP's training memory (the frozen CLIP stores
nothing), so under the plan's recomputation (`recompute`, set by the build; off with --no-recompute) the
convolutions, the attention and the MLP of each block keep only their inputs and run again in the backward
pass. The batch norms are not recomputed: a second forward would update their running statistics twice.
With d = 320 on ViT-B/16 this has 24,168,672 parameters (24,297,072 with the 400-class head).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from composer.backbones.stats import CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD
from composer.components.registry import Kind, NodeInfo, Params, register
from composer.components.side.sme_adapter import SideStem
from composer.components.side.td_adapter import TDAdapter
from composer.tensor_types import ShapeError, TType, match
from composer.recompute import recompute as recomputed

STATS = {"clip": (CLIP_MEAN, CLIP_STD), "imagenet": (IMAGENET_MEAN, IMAGENET_STD)}


class TDSParams(Params):
    dim: int = Field(320, ge=64, description="side width d (320 for ViT-B/16, 512 for ViT-L/14)")
    patch: int = Field(16, ge=1, description="the stem's patch size (the backbone's)")
    sme: bool = Field(True, description="the SME-Adapter: add the frame-difference stem")
    td_adapter: bool = Field(True, description="the TD-Adapter inside each side block")
    reduction: int = Field(16, ge=1, description="TD-Adapter channel reduction")
    normalize: Literal["clip", "imagenet"] = Field("clip", description="pixel statistics of the stem's input")


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


def infer(p: TDSParams, ins: list[TType]) -> TType:
    b = match(ins[0], ("B", "T", "W", 3, "H", "X"), what="windows")
    b = match(ins[1], ("B", "T", "L", "N", "D"), b, what="taps")
    grid = (b["H"] // p.patch, b["X"] // p.patch)
    prefix = _prefix(ins[1])
    if isinstance(b["N"], int) and b["N"] != prefix + grid[0] * grid[1]:
        raise ShapeError(f"taps have {b['N']} tokens per frame but the side stem makes a {grid[0]}x{grid[1]} grid "
                         f"after the tower's {prefix} prefix token(s) (patch {p.patch}); give the backbone's patch "
                         "size")
    return TType((b["B"], p.dim))


def _prefix(taps: TType) -> int:
    """The tapped tower's declared prefix tokens (class token and registers); 1 (a class token) for taps whose
    tower is not known. The side network reads the class token, so a tower without one is refused."""
    prefix = 1 if taps.prefix is None else taps.prefix
    if prefix < 1:
        raise ShapeError("the side network reads the tapped tower's class token, but that tower has none "
                         "(its tokens are all patch tokens); tap a tower with a class token")
    return prefix


def build(p: TDSParams, info: NodeInfo) -> TDSSideNetwork:
    windows, taps = info.in_types
    _, _, window, _, height, width_px = windows.shape
    _, _, layers, _, width = taps.shape
    return TDSSideNetwork(p, layers, width, window, (height // p.patch, width_px // p.patch), _prefix(taps))


register(Kind(
    name="tds_side_network",
    summary="([B, T, W, 3, H, W] windows, [B, T, L, N, D] detached taps) -> [B, d]: TDS-CLIP's side "
            "network with the SME stem and TD-Adapters",
    params=TDSParams, build=build, inputs=("windows", "taps"), infer=infer, recomputes=True,
    paper="TDS-CLIP (Wang et al., arXiv 2408.10688), Sec. 3.2-3.4",
))
