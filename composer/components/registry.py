"""The registry of component kinds.

A kind is registered by the one file that declares it: a pydantic params model, how it may be used
(attached at a site, or called in the flow with typed ports), its shape inference, what its builder would
refuse, whether it trains, and the paper it comes from. None of that imports torch: the builder (the
nn.Module code) lives in a sibling module the declaration names (`Lazy`), imported on the first build, so
`composer validate` and `composer kinds` read declarations only.
Specs name kinds, never import paths, so a spec cannot run code; adding a kind never changes the
language. Other packages add kinds through the `composer.kinds` entry points (composer/plugins.py): a spec
that names one imports the module its installed package declares, still never a path the spec chooses.
docs/components.md is generated from this registry (`composer kinds --markdown`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from composer.components import DECLARED
from composer.errors import Loc, Problem, SpecError, did_you_mean
from composer.plugins import Plugins
from composer.tensor_types import TType
from composer.uses import USES

MAX_SIZE = 2**31 - 1  # the largest integer a component parameter (a width, a count) may be


class Params(BaseModel):
    """Base of every component's params model: unknown keys are errors, every float is finite, and no
    integer is a size no machine could hold (docs/language.md, Limits)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SIZE:
            raise ValueError(f"{value} is larger than any machine could hold (one vector that long of 4-byte "
                             f"numbers is {abs(value) * 4:.3g} bytes); at most {MAX_SIZE}")
        return value


class NoParams(Params):
    pass


@dataclass(frozen=True)
class SiteInfo:
    """What an attachment's builder knows about one place it attaches (one per selected layer)."""

    backbone: str
    tower: str
    point: str
    use: str  # a use of composer/uses.py
    layer: int  # 0-based block index, -1 for a tower-level point
    in_dim: int  # width of what the point receives
    out_dim: int  # width of what the point produces
    width: int  # the tower's model width
    heads: int
    layout: str  # "frames", "video" or "text" (see RunContext)
    frames: int
    grid: tuple[int, int] | None
    prefix: int
    patch: int | None = None
    shared: Any = None  # kinds with build_shared: the module shared by all placements of the component


@dataclass(frozen=True)
class NodeInfo:
    """What a flow node's builder knows: the types of its inputs and output, and the class count."""

    in_types: tuple[TType, ...]
    out_type: TType
    num_classes: int
    base_dir: Path = Path(".")  # the spec file's folder: relative file parameters resolve against it


# (params, where it is built) -> an nn.Module; a weight-delta kind returns its peft config instead (the
# weight_delta use of composer/uses.py injects it)
Build = Callable[[Any, "SiteInfo | NodeInfo"], Any]
# (params, where it would be built) -> None, or a ValueError saying what the builder cannot build there
Check = Callable[[Any, "SiteInfo | NodeInfo"], None]


@dataclass(frozen=True)
class Kind:
    name: str
    summary: str
    params: type[Params]
    build: Build | None  # None: a tap (it builds nothing); composer's own kinds: a Lazy (composer/lazy.py)
    paper: str = ""
    uses: tuple[str, ...] = ()  # how it may use a site (names of composer/uses.py USES); empty for a flow node
    points: tuple[str, ...] = ()  # where it may attach
    inputs: tuple[str, ...] = ()  # flow nodes: input port names (documentation and arity)
    infer: Callable[[Any, list[TType]], TType] | None = None  # flow nodes: output type from input types
    is_loss: bool = False
    fixed_classes: bool = False  # one output per training class: cannot score classes it never trained on
    # kinds that span several sites: (params, [SiteInfo of every placement and layer]) -> a module shared by
    # all placements, passed to build(params, site, shared)
    build_shared: Callable[[Any, list[SiteInfo]], Any] | None = None
    # declared capabilities of what `build` returns, so nothing is probed with hasattr:
    init_from_tower: Callable[[Any, Any], None] | None = None  # (module, tower): start from the built tower
    recomputes: bool = False  # the module has a `recompute` switch that follows the plan (activation checkpointing)
    binds_dataset: bool = False  # the module has `bind_dataset(files)`: it reads dataset-provided files (@name)
    # declared for the checks that run before (or instead of) a build:
    check: Check | None = None  # what `build` refuses, without building; the compiler runs it before it builds
    # whether what `build` makes has parameters (at these params); None: known once built (a plugin's kind
    # that does not say), so `composer validate` builds on the meta device to tell
    trains: bool | Callable[[Any], bool] | None = None
    # (params) -> whether these params are checked only against the built tower (they read its tokenizer):
    # `composer validate` then builds on the meta device, as it did before declarations
    needs_tower: Callable[[Any], bool] | None = None

    def __post_init__(self) -> None:
        unknown = [u for u in self.uses if u not in USES]
        assert not unknown, f"kind {self.name}: unknown uses {unknown} (composer/uses.py has {', '.join(USES)})"

    @property
    def attaches(self) -> bool:
        return bool(self.uses)

    def has_parameters(self, params: Any) -> bool | None:
        """Whether the module built from `params` has parameters (a tap builds nothing); None: unknown."""
        if self.build is None:
            return False
        return self.trains(params) if callable(self.trains) else self.trains


KINDS: dict[str, Kind] = {}
PLUGINS = Plugins("composer.kinds", "kind", KINDS, Kind)  # kinds from other packages, loaded when named


def register(kind: Kind) -> Kind:
    assert kind.name not in KINDS, f"kind {kind.name} registered twice"
    KINDS[kind.name] = kind
    return kind


def own_kinds() -> dict[str, Kind]:
    """Composer's own kinds, every declaration imported (plugins' are not)."""
    for module in dict.fromkeys(DECLARED.values()):
        importlib.import_module(module)
    return KINDS


def get_kind(name: str, loc: Loc | None = None) -> Kind:
    """A kind by name: composer's own imports only its declaration; any other name is looked up among every
    own kind (a misspelling gets the nearest) and then the plugins."""
    if name not in KINDS and name in DECLARED:
        importlib.import_module(DECLARED[name])
    if name not in KINDS:
        own_kinds()  # every own name registered first: no plugin takes one, and a misspelling gets the nearest
        if PLUGINS.load(name, loc) is None:
            raise SpecError(f"unknown component kind '{name}'", loc, expected="a kind from `composer kinds`",
                            hint=did_you_mean(name, [*KINDS, *PLUGINS.entries()]))
    return KINDS[name]


def all_kinds() -> dict[str, Kind]:
    """Every kind, those of other packages imported now (a broken one is logged and left out)."""
    own_kinds()
    PLUGINS.load_all()
    return KINDS


def validate_params(kind: Kind, params: dict[str, Any], where: Callable[[tuple, bool], Loc | None]) -> Params:
    """Validate a component's params with its kind's model; `where(path, key)` locates a key (or its value)."""
    try:
        return kind.params.model_validate(params)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            path = tuple(err["loc"])
            if err["type"] == "extra_forbidden":
                allowed = sorted(kind.params.model_fields)
                problems.append(Problem(f"{kind.name} has no parameter '{path[0]}'", where(path, True),
                                        expected=", ".join(allowed) or "no parameters",
                                        hint=did_you_mean(path[0], allowed)))
            else:
                given = params.get(path[0]) if path else None
                shown = f" (got {given!r})" if given is not None and not isinstance(given, (dict, list)) else ""
                problems.append(Problem(f"{kind.name} parameter '{'.'.join(map(str, path))}': "
                                        f"{err['msg'].lower()}{shown}", where(path, False)))
        raise SpecError(problems) from None
