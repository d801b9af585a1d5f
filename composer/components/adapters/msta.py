"""MSTA: the multimodal spatio-temporal adapter (Chen et al., CVPR 2025, "Efficient Transfer Learning for
Video-language Foundation Models", Sec. 3.2), built on MMA (Yang et al., CVPR 2024, Eq. 3-5).

One adapter per layer l in each tower, parallel to the whole block and fed the block's own first
LayerNorm:   x_out = block(x_in) + lambda * Up_m(Shared_l(Down_m(LN1(x_in))))
- Down_m: Linear(D_m -> r) + ReLU, one per modality (video, text);
- Shared_l: Linear(r -> r) + ReLU, one per layer, shared by both modalities (the cross-modal link);
- Up: text Linear(r -> D_text); video the sum of a spatial Linear(r -> D_video) and a temporal up
  (a grouped Conv3d r -> D_video over time, kernel 3, groups r: 3,072 parameters per layer at r = 256,
  which gives the paper's 8.7M; the class token gets the spatial up only).
lambda = 0.005, with MMA's gradient scaling as the official block places it: the gradient leaving the
branch's output is multiplied by 1 / lambda and the one reaching its input, before LN1, by lambda.
The residual stream below therefore receives the branch's true gradient, while every parameter
inside the branch, LN1's too when LN1 trains, receives 1 / lambda (200) times its true gradient
through the branch, as if the output were not scaled down. Under AdamW a constant gradient factor cancels in the update (Adam
divides by the gradient's running RMS) except against eps, so the scale does not speed the adapter
up; it matters where gradients of different scales meet: a global-norm clip (the branch dominates
the norm), LN1 when it trains (its gradient sums the block's own path and the 200x branch path),
fp16 underflow, and SGD, where it is a 1 / lambda larger learning rate.
Initialisation, as the paper says ("all modules in MSTA are initialized using kaiming
initialization") and MMA does: kaiming normal (fan_out, ReLU) and zero biases for every Linear and
the temporal conv. With `init: zero` the up-projections start at zero and the model starts as the
frozen backbone.
Ablations: `shared: false` drops the shared layer; attach at one tower only for video- or text-only.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from composer.components.registry import Kind, Params, SiteInfo, register


class MSTAParams(Params):
    dim: int = Field(256, ge=1, description="bottleneck r")
    scale: float = Field(0.005, gt=0, description="lambda")
    shared: bool = Field(True, description="a Linear(r, r) per layer shared by video and text")
    temporal: bool = Field(True, description="video: add the temporal up (grouped conv over time)")
    kernel: int = Field(3, ge=1, description="temporal kernel of the video up-projection")
    init: Literal["kaiming", "zero"] = Field("kaiming", description="zero: up-projections start at 0")


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


register(Kind(
    name="msta",
    summary="multimodal spatio-temporal adapter parallel to whole blocks of a video and a text tower, "
            "with a per-layer projection shared by both",
    params=MSTAParams, build=lambda p, site: MSTABranch(site, p, site.shared), build_shared=build_shared,
    paper="MSTA (Chen et al., CVPR 2025), Sec. 3.2; MMA (Yang et al., CVPR 2024), Eq. 3-5",
    uses=("parallel",), points=("block",),
))
