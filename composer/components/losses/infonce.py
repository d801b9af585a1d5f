"""Label-aware symmetric InfoNCE between clip embeddings and their class-text embeddings.

For a batch of B clips with labels y, S_ij = cos(v_i, t_{y_j}) / tau. Every pair with the same label
is a positive (Eq. 15-17 of "Dual semantic supervision and temporal prompt reparameterization",
Electronics 2024; the same form as ActionCLIP's symmetric KL target):
    L_v2t = mean_i  -1/|K(i)| sum_{k in K(i)} log softmax_j(S_i.)_k,   K(i) = {k : y_k = y_i}
    L_t2v = the same over the columns of S;   L = (L_v2t + L_t2v) / 2.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from composer.components.registry import Kind, Params, register
from composer.tensor_types import SCALAR, TType, match
from composer.components.losses import at_least_fp32


class InfoNCEParams(Params):
    temperature: float = Field(0.01, gt=0, description="tau")
    learnable: bool = False


class LabelAwareInfoNCE(nn.Module):
    def __init__(self, p: InfoNCEParams) -> None:
        super().__init__()
        log_tau = torch.tensor(math.log(p.temperature))
        if p.learnable:
            self.log_temperature = nn.Parameter(log_tau)
        else:
            self.register_buffer("log_temperature", log_tau, persistent=False)

    def forward(self, video: torch.Tensor, text: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        t = F.normalize(at_least_fp32(text)[label], dim=-1)  # [B, D]: the text of each clip's label
        if video.dim() == 3:  # one embedding per class: pair clip i with class y_j through v_i^(y_j)
            v = F.normalize(at_least_fp32(video)[:, label], dim=-1)  # [B, B, D]
            sim = (v * t.unsqueeze(0)).sum(-1) / self.log_temperature.exp()
        else:
            sim = F.normalize(at_least_fp32(video), dim=-1) @ t.t() / self.log_temperature.exp()
        positive = (label[:, None] == label[None, :]).to(sim.dtype)
        target = positive / positive.sum(dim=1, keepdim=True)
        v2t = -(target * F.log_softmax(sim, dim=1)).sum(dim=1).mean()
        t2v = -(target * F.log_softmax(sim.t(), dim=1)).sum(dim=1).mean()
        return (v2t + t2v) / 2


def infer(p: InfoNCEParams, ins: list[TType]) -> TType:
    pattern = ("B", "C", "D") if len(ins[0].shape) == 3 and ins[0].shape[1] == "C" else ("B", "D")
    b = match(ins[0], pattern, what="video embedding")
    b = match(ins[1], ("C", "D"), b, what="class embeddings")
    match(ins[2], ("B",), b, dtype="long", what="label")
    return SCALAR


register(Kind(
    name="infonce",
    summary="([B, D], [C, D], long[B]) -> loss: symmetric InfoNCE, all same-label pairs are positives",
    params=InfoNCEParams, build=lambda p, info: LabelAwareInfoNCE(p), inputs=("video", "text", "label"),
    infer=infer, is_loss=True,
    paper="Electronics 2024 13(16):3348, Eq. 15-17; ActionCLIP (Wang et al., arXiv 2109.08472)",
))
