"""The backbone families: a registry from family name to builder.

A family file (clip.py, dinov2.py, ...) registers one `Family`; other packages add families through the
`composer.families` entry points (composer/plugins.py), imported when a spec names one. Every family builds
its real sizes and a `tiny` variant through the same code: tiny keeps the depth, patch size and layout of
the size it stands in for (so a site such as blocks[8-12] lands on the same blocks) and its output widths
(the joint embedding of CLIP, ViCLIP and Chinese-CLIP), and shrinks the inner width to 64.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from composer.backbones.tower import Tower
from composer.errors import Loc, SpecError, did_you_mean
from composer.plugins import Plugins

TINY = "tiny"


@dataclass(frozen=True)
class Request:
    """What the spec and the run ask of a backbone."""

    size: str  # a real size name, e.g. "ViT-B/16"
    tiny: bool  # narrow random-weight variant of `size`
    weights: str | None  # tag or local path; None: random initialisation
    load: bool  # load the weights now (False: structure only, e.g. on the meta device)
    image_size: int
    frames: int
    device: torch.device | str = "cpu"
    activation: str | None = None  # the spec's `activation` (families listing `activations` only)


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
        size = f"tiny({self.request.size})" if self.request.tiny else self.request.size
        return f"{self.family} {size}"


@dataclass(frozen=True)
class Family:
    name: str
    sizes: tuple[str, ...]
    default_size: str
    default_weights: Callable[[str], str | None]  # size -> weight tag
    build: Callable[..., Backbone]  # (request, loc, backbone name) -> Backbone
    summary: str
    towers: tuple[str, ...] = ("visual",)
    activations: tuple[str, ...] = ()  # what a spec's `activation` may say; empty: the family's is fixed


FAMILIES: dict[str, Family] = {}
PLUGINS = Plugins("composer.families", "backbone family", FAMILIES, Family)  # loaded when a spec names one


def register_family(family: Family) -> Family:
    FAMILIES[family.name] = family
    return family


def get_family(name: str, loc: Loc | None = None) -> Family:
    import composer.backbones  # noqa: F401  (registers the families)

    if name not in FAMILIES and PLUGINS.load(name, loc) is None:
        known = sorted({*FAMILIES, *PLUGINS.entries()})
        raise SpecError(f"unknown backbone family '{name}'", loc, expected=", ".join(known),
                        hint=did_you_mean(name, known))
    return FAMILIES[name]


def all_families() -> dict[str, Family]:
    """Every family, those of other packages imported now (a broken one is logged and left out)."""
    import composer.backbones  # noqa: F401  (registers the families)

    PLUGINS.load_all()
    return FAMILIES


def check_size(family: Family, size: str, loc: Loc | None = None) -> str:
    """The real size a spec's `size` names (`tiny` alone means tiny of the family's default size)."""
    if size == TINY:
        return family.default_size
    if size not in family.sizes:
        raise SpecError(f"{family.name} has no size '{size}'", loc, expected=", ".join(family.sizes + (TINY,)),
                        hint=did_you_mean(size, family.sizes))
    return size
