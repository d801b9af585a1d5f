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

from pydantic import Field

from composer.backbones.stats import CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD
from composer.components.registry import Kind, Params, register
from composer.lazy import Lazy
from composer.tensor_types import ShapeError, TType, match

STATS = {"clip": (CLIP_MEAN, CLIP_STD), "imagenet": (IMAGENET_MEAN, IMAGENET_STD)}


class TDSParams(Params):
    dim: int = Field(320, ge=64, description="side width d (320 for ViT-B/16, 512 for ViT-L/14)")
    patch: int = Field(16, ge=1, description="the stem's patch size (the backbone's)")
    sme: bool = Field(True, description="the SME-Adapter: add the frame-difference stem")
    td_adapter: bool = Field(True, description="the TD-Adapter inside each side block")
    reduction: int = Field(16, ge=1, description="TD-Adapter channel reduction")
    normalize: Literal["clip", "imagenet"] = Field("clip", description="pixel statistics of the stem's input")


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


register(Kind(
    name="tds_side_network",
    summary="([B, T, W, 3, H, W] windows, [B, T, L, N, D] detached taps) -> [B, d]: TDS-CLIP's side "
            "network with the SME stem and TD-Adapters",
    params=TDSParams, inputs=("windows", "taps"), infer=infer, recomputes=True,
    paper="TDS-CLIP (Wang et al., arXiv 2408.10688), Sec. 3.2-3.4",
    build=Lazy("composer.components.side.tds_module:build"),
    trains=True,
))
