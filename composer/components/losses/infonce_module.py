"""The modules of the `infonce` kind (declared in infonce.py, which names `build` here)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from composer.components.losses.fp32 import at_least_fp32
from composer.components.losses.infonce import InfoNCEParams
from composer.components.registry import NodeInfo


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


def build(p: InfoNCEParams, info: NodeInfo) -> LabelAwareInfoNCE:
    return LabelAwareInfoNCE(p)
