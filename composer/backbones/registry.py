"""The backbone families: a registry from family name to its declaration and builder.

A family's declaration (composer/backbones/families/) registers one `Family`: sizes, towers and their shapes
as data, read without torch; its builder (clip.py, dinov2.py, ...) is imported on the first build. Other packages add families through the
`composer.families` entry points (composer/plugins.py), imported when a spec names one. Every family builds
its real sizes and a `tiny` variant through the same code: tiny keeps the depth, patch size and layout of
the size it stands in for (so a site such as blocks[8-12] lands on the same blocks) and its output widths
(the joint embedding of CLIP, ViCLIP and Chinese-CLIP), and shrinks the inner width to 64.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable

from composer.backbones.families import DECLARED
from composer.backbones.shape import BackboneShape, TowerShape, shape_of
from composer.errors import Loc, SpecError, did_you_mean
from composer.plugins import Plugins

if TYPE_CHECKING:
    from composer.backbones.backbone import Backbone

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
    device: Any = "cpu"  # a torch.device or its name
    activation: str | None = None  # the spec's `activation` (families listing `activations` only)


@dataclass(frozen=True)
class Family:
    name: str
    sizes: tuple[str, ...]
    default_size: str
    default_weights: Callable[[str], str | None]  # size -> weight tag
    build: Callable[..., "Backbone"]  # (request, loc, backbone name) -> Backbone; composer's own: a Lazy
    summary: str
    towers: tuple[str, ...] = ("visual",)
    activations: tuple[str, ...] = ()  # what a spec's `activation` may say; empty: the family's is fixed
    # (request) -> each tower's shape, as data (composer/backbones/families/); None: read from a meta build
    shapes: Callable[[Request], dict[str, TowerShape]] | None = None
    # (request, loc, backbone name): what a build would refuse about the request (weights, activation), without
    # building; the build refuses the same
    check: Callable[[Request, Loc | None, str], None] | None = None
    # how the library's own model holds the weight deltas' linears (backbones/peft_layout.py), for PEFT's
    # adapter format; a Lazy naming a PeftLayout. None: composer cannot write or read this family's adapters.
    peft: Any = None

    def shape(self, request: Request, loc: Loc | None = None, name: str = "") -> BackboneShape:
        """The backbone as checks see it: declared, or (a family that declares no shapes) built on the meta
        device and read."""
        if self.check is not None:
            self.check(request, loc, name)
        if self.shapes is not None:
            return BackboneShape(request, self.shapes(request))
        built = self.build(replace(request, device="meta", load=False), loc, name)
        return BackboneShape(request, {t: shape_of(tower) for t, tower in built.towers.items()})


FAMILIES: dict[str, Family] = {}
PLUGINS = Plugins("composer.families", "backbone family", FAMILIES, Family)  # loaded when a spec names one


def register_family(family: Family) -> Family:
    FAMILIES[family.name] = family
    return family


def own_families() -> dict[str, Family]:
    """Composer's own families, every declaration imported (plugins' are not), in the table's order."""
    for module in DECLARED.values():
        importlib.import_module(module)
    return {name: FAMILIES[name] for name in DECLARED}


def get_family(name: str, loc: Loc | None = None) -> Family:
    """A family by name: composer's own imports only its declaration; any other name is looked up among every
    own family (a misspelling gets the nearest) and then the plugins."""
    if name not in FAMILIES and name in DECLARED:
        importlib.import_module(DECLARED[name])
    if name not in FAMILIES:
        own_families()  # every own name registered first: no plugin takes one
        if PLUGINS.load(name, loc) is None:
            known = sorted({*FAMILIES, *PLUGINS.entries()})
            raise SpecError(f"unknown backbone family '{name}'", loc, expected=", ".join(known),
                            hint=did_you_mean(name, known))
    return FAMILIES[name]


def all_families() -> dict[str, Family]:
    """Every family: composer's own in the table's order, then those of other packages, imported now (a
    broken one is logged and left out)."""
    own = own_families()
    PLUGINS.load_all()
    return {**own, **FAMILIES}


def backbone_label(family: str, request: Request) -> str:
    """A backbone as every command names it: "clip ViT-B/16", "clip tiny(ViT-B/16)"."""
    return f"{family} {f'tiny({request.size})' if request.tiny else request.size}"


def check_size(family: Family, size: str, loc: Loc | None = None) -> str:
    """The real size a spec's `size` names (`tiny` alone means tiny of the family's default size)."""
    if size == TINY:
        return family.default_size
    if size not in family.sizes:
        raise SpecError(f"{family.name} has no size '{size}'", loc, expected=", ".join(family.sizes + (TINY,)),
                        hint=did_you_mean(size, family.sizes))
    return size
