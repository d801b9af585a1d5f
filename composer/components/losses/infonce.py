"""Label-aware symmetric InfoNCE between clip embeddings and their class-text embeddings.

For a batch of B clips with labels y, S_ij = cos(v_i, t_{y_j}) / tau. Every pair with the same label
is a positive (Eq. 15-17 of "Dual semantic supervision and temporal prompt reparameterization",
Electronics 2024; the same form as ActionCLIP's symmetric KL target):
    L_v2t = mean_i  -1/|K(i)| sum_{k in K(i)} log softmax_j(S_i.)_k,   K(i) = {k : y_k = y_i}
    L_t2v = the same over the columns of S;   L = (L_v2t + L_t2v) / 2.
"""

from __future__ import annotations

from pydantic import Field

from composer.components.registry import Kind, Params, register
from composer.lazy import Lazy
from composer.tensor_types import SCALAR, TType, match


class InfoNCEParams(Params):
    temperature: float = Field(0.01, gt=0, description="tau")
    learnable: bool = False


def infer(p: InfoNCEParams, ins: list[TType]) -> TType:
    pattern = ("B", "C", "D") if len(ins[0].shape) == 3 and ins[0].shape[1] == "C" else ("B", "D")
    b = match(ins[0], pattern, what="video embedding")
    b = match(ins[1], ("C", "D"), b, what="class embeddings")
    match(ins[2], ("B",), b, dtype="long", what="label")
    return SCALAR


register(Kind(
    name="infonce",
    summary="([B, D], [C, D], long[B]) -> loss: symmetric InfoNCE, all same-label pairs are positives",
    params=InfoNCEParams, inputs=("video", "text", "label"),
    infer=infer, is_loss=True,
    paper="Electronics 2024 13(16):3348, Eq. 15-17; ActionCLIP (Wang et al., arXiv 2109.08472)",
    build=Lazy("composer.components.losses.infonce_module:build"),
    trains=lambda p: p.learnable,
))
