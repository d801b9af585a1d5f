"""ST-Adapter (Pan et al., NeurIPS 2022, Eq. 1): x + Up(DWConv3d(Down(x))) before each block of a
per-frame ViT, the depthwise 3D conv (kernel 3x1x1) mixing time over the patch grid; the class token
(and any register or prompt token) passes through unchanged. Bottleneck 384 and zero-initialised up-projection as in the paper's ViT-B setting.
"""

from __future__ import annotations

from pydantic import Field

from composer.components.registry import Kind, Params, SiteInfo, register
from composer.lazy import Lazy


class STAdapterParams(Params):
    dim: int = Field(384, ge=1, description="bottleneck width")
    kernel: tuple[int, int, int] = Field((3, 1, 1), description="depthwise conv kernel (time, height, width)")


def check(p: STAdapterParams, site: SiteInfo) -> None:
    if site.layout != "frames":
        raise ValueError("st_adapter needs a per-frame visual tower")


register(Kind(
    name="st_adapter",
    summary="spatio-temporal adapter before a block: bottleneck with a depthwise 3D conv over time",
    params=STAdapterParams, uses=("sequential",), points=("input",),
    paper="ST-Adapter (Pan et al., NeurIPS 2022), Eq. 1",
    build=Lazy("composer.components.adapters.st_adapter_module:build"),
    check=check,
    trains=True,
))
