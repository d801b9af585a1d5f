"""The built backbone: a family's library model (as `self.model`) and its towers, as one nn.Module."""

from __future__ import annotations

import torch
from torch import nn

from composer.backbones.registry import Request, backbone_label
from composer.backbones.tower import Tower


class Backbone(nn.Module):
    """A family's pretrained model plus its towers. Subclasses hold the library model as `self.model`."""

    family: str = ""

    def __init__(self, request: Request, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.request = request
        self.towers: dict[str, Tower] = {}
        self.register_buffer("mean", torch.tensor(mean, device=request.device).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, device=request.device).view(1, 3, 1, 1), persistent=False)

    # submodules of `model` that only one tower uses, so an unused tower can be dropped (memory and counts)
    tower_modules: dict[str, tuple[str, ...]] = {}

    def drop_tower(self, name: str) -> None:
        """Free a tower the spec never uses (its weights are loaded before, so checkpoints still match)."""
        for attr in self.tower_modules.get(name, ()):
            delattr(self.model, attr)
        self.towers.pop(name, None)

    def normalize(self, frames: torch.Tensor) -> torch.Tensor:
        """[N, 3, H, W] in [0, 1] -> the statistics this backbone was trained with, in the backbone's own float
        dtype (its statistics': fp32, float64 for a float64 model). Never a fixed cast: a float64 model must
        run in float64, and mixing precisions is autocast's job (it casts for the layers it runs in half)."""
        frames = frames.to(self.mean.dtype)
        return (frames - self.mean) / self.std

    @property
    def label(self) -> str:
        return backbone_label(self.family, self.request)
