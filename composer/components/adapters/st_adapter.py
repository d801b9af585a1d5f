"""ST-Adapter (Pan et al., NeurIPS 2022, Eq. 1): x + Up(DWConv3d(Down(x))) before each block of a
per-frame ViT, the depthwise 3D conv (kernel 3x1x1) mixing time over the patch grid; the class token
(and any register or prompt token) passes through unchanged. Bottleneck 384 and zero-initialised up-projection as in the paper's ViT-B setting."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from composer.components.registry import Kind, Params, SiteInfo, register


class STAdapterParams(Params):
    dim: int = Field(384, ge=1, description="bottleneck width")
    kernel: tuple[int, int, int] = Field((3, 1, 1), description="depthwise conv kernel (time, height, width)")


class STAdapter(nn.Module):
    def __init__(self, width: int, p: STAdapterParams) -> None:
        super().__init__()
        self.down = nn.Linear(width, p.dim)
        self.conv = nn.Conv3d(p.dim, p.dim, p.kernel, padding=tuple(k // 2 for k in p.kernel), groups=p.dim)
        self.up = nn.Linear(p.dim, width)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor, ctx) -> torch.Tensor:  # [B*T, prefix + N + prompts, D]
        b, t = ctx.batch, ctx.frames
        h, w = ctx.grid
        head, patches, tail = ctx.split(x)  # class token (and registers, prompts) pass through
        y = self.down(patches).view(b, t, h, w, -1).permute(0, 4, 1, 2, 3)
        y = self.conv(y).permute(0, 2, 3, 4, 1).reshape(b * t, h * w, -1)
        return torch.cat([head, patches + self.up(y), tail], dim=1)


def build(p: STAdapterParams, site: SiteInfo) -> STAdapter:
    if site.layout != "frames":
        raise ValueError("st_adapter needs a per-frame visual tower")
    return STAdapter(site.width, p)


register(Kind(
    name="st_adapter",
    summary="spatio-temporal adapter before a block: bottleneck with a depthwise 3D conv over time",
    params=STAdapterParams, build=build, uses=("sequential",), points=("input",),
    paper="ST-Adapter (Pan et al., NeurIPS 2022), Eq. 1",
))
