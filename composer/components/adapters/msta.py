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

from typing import Literal

from pydantic import Field

from composer.components.registry import Kind, Params, register
from composer.lazy import Lazy


class MSTAParams(Params):
    dim: int = Field(256, ge=1, description="bottleneck r")
    scale: float = Field(0.005, gt=0, description="lambda")
    shared: bool = Field(True, description="a Linear(r, r) per layer shared by video and text")
    temporal: bool = Field(True, description="video: add the temporal up (grouped conv over time)")
    kernel: int = Field(3, ge=1, description="temporal kernel of the video up-projection")
    init: Literal["kaiming", "zero"] = Field("kaiming", description="zero: up-projections start at 0")


register(Kind(
    name="msta",
    summary="multimodal spatio-temporal adapter parallel to whole blocks of a video and a text tower, "
            "with a per-layer projection shared by both",
    params=MSTAParams,
    paper="MSTA (Chen et al., CVPR 2025), Sec. 3.2; MMA (Yang et al., CVPR 2024), Eq. 3-5",
    uses=("parallel",), points=("block",),
    build=Lazy("composer.components.adapters.msta_module:build"),
    build_shared=Lazy("composer.components.adapters.msta_module:build_shared"),
    trains=True,
))
