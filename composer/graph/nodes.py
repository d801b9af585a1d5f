"""What a spec's graph holds: named tensors, the calls that make them, tower runs and their attachments
(composer/graph/graph.py builds it).

Node ids in the networkx DiGraph:
    t:<name>   a tensor (spec input, flow output, or a tap's output)
    c:<name>   the flow step that computes tensor <name> with a component
    r:<id>     one run of a backbone tower (several flow steps may read different outputs of it)
    a:<name>   an attached component (an edge into the tower run it changes)
    loss       the weighted sum of the losses
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from composer.backbones.shape import BackboneShape, TowerShape
from composer.components.registry import Kind, Params
from composer.errors import Loc
from composer.spec.ir import Spec
from composer.spec.site import Site
from composer.tensor_types import TType

PRETRAINED = "pretrained"


@dataclass
class Attachment:
    """One placement of an attached component (a component with several sites has one per site)."""

    name: str  # the component
    key: str  # unique per placement: the component name, or name@i for the i-th of several sites
    kind: Kind
    params: Params
    use: str
    site: Site
    layers: list[int]  # 0-based blocks; empty for a tower-level point
    loc: Loc | None
    linear_paths: list[str] = field(default_factory=list)  # weight deltas: module paths in the backbone

    @property
    def backbone(self) -> str:
        return self.site.backbone

    @property
    def tower(self) -> str:
        return self.site.tower

    @property
    def point(self) -> str:
        return self.site.point


@dataclass
class TowerRun:
    """One execution of a tower on given inputs; `active=False` is the pretrained tower (`.pretrained`)."""

    id: str
    backbone: str
    tower: str
    inputs: tuple[str, ...]
    active: bool
    outputs: dict[str, str] = field(default_factory=dict)  # tensor name -> tower output ("" = default)
    taps: list[str] = field(default_factory=list)
    loc: Loc | None = None


@dataclass
class Call:
    """A flow step computed by a component."""

    out: str
    component: str
    kind: Kind
    params: Params
    inputs: tuple[str, ...]
    loc: Loc | None


@dataclass
class Graph:
    spec: Spec
    shapes: dict[str, BackboneShape]  # what the checks read; the built backbones come later, from the compiler
    backbones: dict[str, Any] = field(default_factory=dict)  # name -> backbone.Backbone, once built
    g: nx.DiGraph = field(default_factory=nx.DiGraph)
    attachments: dict[str, Attachment] = field(default_factory=dict)
    calls: dict[str, Call] = field(default_factory=dict)
    runs: dict[str, TowerRun] = field(default_factory=dict)
    types: dict[str, TType] = field(default_factory=dict)
    producer: dict[str, str] = field(default_factory=dict)  # tensor -> "c:x" or "r:id"
    predict: str | None = None
    num_classes: int = 0

    def shape(self, backbone: str, tower: str) -> TowerShape:  # as declared; built: backbones[b].towers[t]
        return self.shapes[backbone].towers[tower]

    def order(self) -> list[str]:
        """Call and run nodes in an order where every input is computed first."""
        return [n for n in nx.topological_sort(self.g) if n.startswith(("c:", "r:"))]

    def attachments_of(self, backbone: str, tower: str) -> list[Attachment]:
        return [a for a in self.attachments.values() if a.backbone == backbone and a.tower == tower]

    def placements(self, component: str) -> list[Attachment]:
        return [a for a in self.attachments.values() if a.name == component]

    def calls_feeding(self, tensor: str) -> list[Call]:
        """The flow components whose outputs `tensor` is computed from (directly or further up)."""
        upstream = nx.ancestors(self.g, f"t:{tensor}")
        return [c for c in self.calls.values() if f"c:{c.out}" in upstream]

    def computed_from(self, tensor: str, source: str) -> bool:
        """Whether `tensor` depends on the tensor or input `source`."""
        return f"t:{source}" in nx.ancestors(self.g, f"t:{tensor}")

    def readers(self, tensor: str) -> list[str]:
        """The tower runs (by id) and flow steps (by output) that read `tensor`."""
        return [node[2:] for node in self.g.successors(f"t:{tensor}") if node.startswith(("c:", "r:"))]
