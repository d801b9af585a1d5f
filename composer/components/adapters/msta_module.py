"""The modules of the `msta` kind (declared in msta.py, which names `build` here)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from composer.components.adapters.msta import MSTAParams
from composer.components.registry import SiteInfo


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; the backward pass multiplies the gradient by `scale`."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None


def _scale_grad(x: torch.Tensor, scale: float) -> torch.Tensor:
    """`_ScaleGrad` where there is a backward pass; without autograd it is the identity it is in the forward
    pass, left out so that inference can be traced (TorchScript cannot save a Python autograd Function)."""
    return _ScaleGrad.apply(x, scale) if torch.is_grad_enabled() else x


def _kaiming(layer: nn.Linear | nn.Conv3d) -> nn.Linear | nn.Conv3d:
    nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
    nn.init.zeros_(layer.bias)
    return layer


class MSTABranch(nn.Module):
    """One tower's adapter in one layer; the shared Linear is looked up in the component's shared part."""

    def __init__(self, site: SiteInfo, p: MSTAParams, shared: nn.ModuleDict) -> None:
        super().__init__()
        self.__dict__["shared_layers"] = shared  # owned by the component's "shared" part, not registered twice
        self.key, self.scale, self.layout = str(site.layer + 1), p.scale, site.layout
        self.down = _kaiming(nn.Linear(site.width, p.dim))
        self.up = _kaiming(nn.Linear(p.dim, site.width))
        video = site.layout in ("frames", "video") and p.temporal
        groups = math.gcd(p.dim, site.width)  # r at full size (256 | 768); narrower tiny towers need fewer
        self.temporal = _kaiming(nn.Conv3d(p.dim, site.width, (p.kernel, 1, 1), padding=(p.kernel // 2, 0, 0),
                                           groups=groups)) if video else None
        if p.init == "zero":
            nn.init.zeros_(self.up.weight)
            nn.init.zeros_(self.up.bias)
            if self.temporal is not None:
                nn.init.zeros_(self.temporal.weight)
                nn.init.zeros_(self.temporal.bias)

    def _temporal_up(self, h: torch.Tensor, ctx) -> torch.Tensor:
        """The temporal up-projection of the patch tokens ([CLS] gets none)."""
        gh, gw = ctx.grid
        head, patches, tail = ctx.split(h)  # class token (and prompt tokens) get none
        if self.layout == "video" and ctx.order == "hwt":  # [B, 1 + N*T, r], patch-major (ViCLIP)
            b, t = h.shape[0], ctx.frames
            grid = patches.reshape(b, gh, gw, t, -1).permute(0, 4, 3, 1, 2)
            out = self.temporal(grid).permute(0, 3, 4, 2, 1).reshape(b, gh * gw * t, -1)
        elif self.layout == "video":  # [B, T*N, r], time-major (VideoMAE)
            b, t = h.shape[0], ctx.frames
            grid = patches.reshape(b, t, gh, gw, -1).permute(0, 4, 1, 2, 3)
            out = self.temporal(grid).permute(0, 2, 3, 4, 1).reshape(b, t * gh * gw, -1)
        else:  # frames: [B*T, 1 + N, r]
            b, t = ctx.batch, ctx.frames
            grid = patches.reshape(b, t, gh, gw, -1).permute(0, 4, 1, 2, 3)
            out = self.temporal(grid).permute(0, 2, 3, 4, 1).reshape(b * t, gh * gw, -1)
        return F.pad(out, (0, 0, head.shape[1], tail.shape[1]))

    def forward(self, x: torch.Tensor, ctx) -> torch.Tensor:
        h = ctx.parts.norm1(_scale_grad(x, self.scale))
        h = torch.relu(self.down(h))
        if self.key in self.shared_layers:
            h = torch.relu(self.shared_layers[self.key](h))
        y = self.up(h)
        if self.temporal is not None:
            y = y + self._temporal_up(h, ctx)
        return self.scale * _scale_grad(y, 1.0 / self.scale)


def build_shared(p: MSTAParams, sites: list[SiteInfo]) -> nn.ModuleDict:
    layers = sorted({s.layer for s in sites})
    if not p.shared:
        return nn.ModuleDict()
    return nn.ModuleDict({str(i + 1): _kaiming(nn.Linear(p.dim, p.dim)) for i in layers})


def build(p: MSTAParams, site: SiteInfo) -> MSTABranch:
    return MSTABranch(site, p, site.shared)
