"""The spec IR: what a spec says, as pydantic models with unknown keys forbidden.

Both surface syntaxes lower to these models. Component parameters are kept as a plain mapping here
and validated later by each component's own params model (see composer/components/registry.py), so
adding a component never changes the language.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, field_validator
from pydantic_core import PydanticCustomError

from composer.errors import Loc
from composer.uses import USES

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
# A spec's name becomes one path component (runs/<name>-<time>), so it may hold no separator, cannot be
# '.' or '..' and cannot start like an option or a hidden file.
SPEC_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._+-]*$"
SPEC_NAME_HINT = ("the name names the run folder (runs/<name>-<time>): letters, digits, '.', '_', '+' and '-', "
                  "starting with a letter, a digit or '_', at most 100 characters")


def spec_name_from(stem: str) -> str:
    """A valid spec name from a file's stem (the default name): other characters become '-'."""
    name = re.sub(r"[^A-Za-z0-9._+-]+", "-", stem).lstrip(".-+")[:100]
    return name or "spec"


def _not_text(value: Any) -> Any:
    """A number written as text ('10', '1_000', a quoted value) is refused: pydantic would convert it, past
    the front end's range checks (a seed of 1_000_000_000_000_000_000_000 would pass as an int). Other text
    is left to pydantic, which says which type it expected."""
    if isinstance(value, str):
        try:
            float(value)  # what Python reads as a number is what pydantic would convert
        except ValueError:
            return value
        raise PydanticCustomError("number_as_text",
                                  "input should be a valid number, not text (quoted, or with `_` between digits)")
    return value


Int = Annotated[int, BeforeValidator(_not_text)]
Float = Annotated[float, BeforeValidator(_not_text)]
Beta = Annotated[Float, Field(ge=0, lt=1)]  # Adam's moment decay: 1 or more diverges, torch refuses it late


class Node(BaseModel):
    """Base of every IR node: strict keys, and the source location it was read from."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)  # floats are finite
    _loc: Loc | None = PrivateAttr(default=None)

    @property
    def loc(self) -> Loc | None:
        return self._loc


# ---------------------------------------------------------------- inputs
class VideoInput(Node):
    """A batch of clips, [B, T, 3, H, W]; `window` > 1 loads that many consecutive frames per sampled frame."""

    kind: Literal["video"]
    frames: Int = Field(8, ge=1)
    size: Int = Field(224, ge=8)
    window: Int = Field(1, ge=1)


class ClassesInput(Node):
    """The class names of the dataset, [C] strings. `count` is C when no dataset is given (build, graph)."""

    kind: Literal["classes"]
    count: Int = Field(400, ge=1)


class LabelInput(Node):
    """The integer label of each clip, [B]."""

    kind: Literal["label"]


Input = Annotated[VideoInput | ClassesInput | LabelInput, Field(discriminator="kind")]


def default_inputs() -> dict[str, Any]:
    return {"video": VideoInput(kind="video"), "class_names": ClassesInput(kind="classes"),
            "label": LabelInput(kind="label")}


# ---------------------------------------------------------------- backbones
class BackboneSpec(Node):
    """A pretrained model from a family in composer/backbones, frozen unless said otherwise."""

    family: str
    size: str
    weights: str | None = None  # a weight tag (e.g. "openai"), a local file, "random"; None = family default
    # the MLP activation the weights were trained with, for families that have a choice (CLIP), when the
    # weights cannot tell: a local file that is not OpenAI's release
    activation: Literal["quick_gelu", "gelu"] | None = None
    frozen: bool = True
    unfrozen_except: list[str] = Field(default_factory=list)  # with frozen=false: parameter globs kept frozen
    frames: Int | None = Field(None, ge=1)  # frames the backbone was pretrained on (temporal embeddings)
    image_size: Int | None = Field(None, ge=8)


# ---------------------------------------------------------------- components
Use = Literal[tuple(USES)]  # the uses of composer/uses.py


class Component(Node):
    """An instance of a registry kind: either attached at a backbone `site` or called in the flow."""

    kind: str
    params: dict[str, Any] = Field(default_factory=dict)
    site: str | list[str] | None = None  # several sites: one component spanning towers (e.g. MSTA)
    use: Use | None = None
    frozen: bool = False


# ---------------------------------------------------------------- flow
class Step(Node):
    """One line of the dataflow: `out = call(in...)`; `call` is a component or `<backbone>.<tower>[.<output>]`."""

    call: str
    inputs: list[Name] = Field(default_factory=list, alias="in")


# ---------------------------------------------------------------- training
class Views(Node):
    """Test views of a video: clips along time x crops in space (the centre, or three along the longer side).
    Their product is bounded by limits.MAX_VIEWS."""

    clips: Int = Field(1, ge=1)
    crops: Int = 1

    @field_validator("crops")
    @classmethod
    def _crops(cls, v: int) -> int:
        if v not in (1, 3):  # the test transforms make exactly these; any other count failed after training
            raise PydanticCustomError("crops", "crops must be 1 (the centre) or 3 (along the longer side)")
        return v


class GroupOptions(Node):
    lr: Float | None = Field(None, gt=0)
    weight_decay: Float | None = Field(None, ge=0)


class Train(Node):
    """Training defaults; `composer run` options override them."""

    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: Float = Field(1e-3, gt=0)
    weight_decay: Float = Field(0.01, ge=0)
    betas: tuple[Beta, Beta] = (0.9, 0.999)
    momentum: Float = Field(0.9, ge=0)
    schedule: Literal["cosine", "constant", "linear"] = "cosine"
    warmup_epochs: Float = Field(0.0, ge=0)
    epochs: Int = Field(10, ge=1)
    batch_size: Int = Field(8, ge=1)
    accumulate: Int = Field(1, ge=1)
    grad_clip: Float | None = Field(1.0, gt=0)
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    seed: Int = 0
    views: Views = Field(default_factory=Views)
    groups: dict[Name, GroupOptions] = Field(default_factory=dict)  # per component/backbone lr and wd


class Reported(Node):
    """What the paper reports for this model, for `composer report` to compare against."""

    trainable_params: Float | None = Field(None, gt=0)
    total_params: Float | None = Field(None, gt=0)
    gflops: Float | None = Field(None, gt=0)
    source: str | None = None  # where in the paper (table, figure)


class Stage(Node):
    """One training stage: what trains, which losses, and schedule overrides. Stages run in order."""

    trains: list[Name] = Field(min_length=1)
    losses: dict[Name, Float] = Field(min_length=1)
    epochs: Int | None = Field(None, ge=1)
    lr: Float | None = Field(None, gt=0)
    warmup_epochs: Float | None = Field(None, ge=0)


# ---------------------------------------------------------------- the spec
class Spec(Node):
    name: str | None = Field(None, pattern=SPEC_NAME_PATTERN, max_length=100)
    description: str | None = None
    paper: str | None = None
    inputs: dict[Name, Input] = Field(default_factory=default_inputs)
    backbones: dict[Name, BackboneSpec] = Field(default_factory=dict)
    components: dict[Name, Component] = Field(default_factory=dict)
    flow: dict[Name, Step] = Field(default_factory=dict)
    losses: dict[Name, Float] = Field(default_factory=dict)
    predict: Name | None = None  # the [B, C] scores used for evaluation; default: the tensor named "logits"
    reported: Reported | None = None
    train: Train = Field(default_factory=Train)
    stages: dict[Name, Stage] = Field(default_factory=dict)
    _where: Any = PrivateAttr(default=None)  # composer.spec.document.SourceMap
    _file: str = PrivateAttr(default="<spec>")

    def loc_of(self, *path: Any) -> Loc | None:
        """Where `path` (e.g. "components", "adapter", "site") was written, or its nearest parent."""
        return self._where.value(path) if self._where is not None else None

    def key_loc_of(self, *path: Any) -> Loc | None:
        return self._where.key(path) if self._where is not None else None

    def written_at(self, *path: Any) -> Loc | None:
        """Where the value at `path` itself was written (this file, an `extends` parent or a --set option);
        None when it holds a default. Unlike loc_of, never a parent's location."""
        return self._where.written(path) if self._where is not None else None

    def removed_at(self, *path: Any) -> Loc | None:
        """Where an inherited key at `path` was deleted (`!delete`, `delete`, --unset), if it was."""
        return self._where.removed.get(tuple(path)) if self._where is not None else None

    def video_input(self) -> VideoInput | None:
        """The clips input the backbones see (its frame count and size); None in a spec without video."""
        return next((i for i in self.inputs.values() if isinstance(i, VideoInput)), None)

    @field_validator("backbones", "components", "flow", "inputs", "stages", mode="before")
    @classmethod
    def _mapping(cls, v: Any) -> Any:
        return {} if v is None else v
