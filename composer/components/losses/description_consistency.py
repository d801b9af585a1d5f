"""Description consistency (MSTA, Chen et al., CVPR 2025, Sec. 3.3): keep the trainable text branch's
class embedding close to what the frozen text encoder makes of descriptions of that class:
    L_CC = mean_c [ (1 - cos(t_c, mean_n s_{c,n})) + (1 - cos(t_c, mean_n u_{c,n})) ]
with s the N spatial ("what it looks like") and u the N temporal ("the steps over time") descriptions,
each averaged over its N sentences first (the `mean` kind). The reduction over classes (mean or sum)
is not stated in the paper; mean is the default. Weighted by alpha = 1 in the total loss.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from composer.components.registry import Kind, Params, register
from composer.lazy import Lazy
from composer.tensor_types import SCALAR, TType, match


class ConsistencyParams(Params):
    reduction: Literal["mean", "sum"] = Field("mean", description="over classes")


def infer(p: ConsistencyParams, ins: list[TType]) -> TType:
    b = match(ins[0], ("C", "D"), what="class embeddings")
    for i, t in enumerate(ins[1:], 1):
        match(t, ("C", "D"), b, what=f"description embeddings #{i}")
    return SCALAR


register(Kind(
    name="description_consistency",
    summary="([C, D] trainable class embeddings, [C, D] description embeddings...) -> loss: cosine distance "
            "to each set of frozen description embeddings",
    params=ConsistencyParams,
    inputs=("classes", "descriptions..."), infer=infer, is_loss=True,
    paper="MSTA (Chen et al., CVPR 2025), Sec. 3.3, consistency constraint",
    build=Lazy("composer.components.losses.description_consistency_module:build"),
    trains=False,
))
