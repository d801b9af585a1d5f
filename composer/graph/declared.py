"""A spec checked against declarations only: every check the compiler makes, before anything is built.

Backbones are their families' declared shapes, components their kinds' declarations (shape inference, what
their builders refuse, whether they train), so `composer validate` gives every error a build would give
without importing torch. The compiler runs the same `check_spec` first and builds only a spec it passed.
What only a built module can say needs a meta-device build: a kind whose params are checked against the
built tower (CoOp's init words, counted by the tower's tokenizer: `needs_build`), and the shapes of a family
from another package that declares none (its Family.shape builds it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from composer.backbones.demo_weights import NoDemoWeights, demo_file
from composer.backbones.families.parameters import trains as backbone_trains
from composer.backbones.registry import TINY, Family, Request, check_size, get_family, own_families
from composer.backbones.shape import BackboneShape
from composer.backbones.weights import is_local_path
from composer.components.registry import NodeInfo, SiteInfo
from composer.errors import Loc, SpecError
from composer.graph.checks import check_training
from composer.graph.graph import build_graph
from composer.graph.nodes import Attachment, Graph
from composer.spec.ir import Spec


@dataclass(frozen=True)
class BackboneRequest:
    """One backbone of a spec: its family, what is asked of it, and where the spec says so."""

    family: Family
    request: Request
    loc: Loc | None


def _demo_request(spec: Spec, name: str, family: Family, size: str) -> tuple[str, str | None]:
    """The committed demo file of one backbone and the activation it was trained with (CLIP's)."""
    b = spec.backbones[name]
    if b.size == TINY and b.weights and is_local_path(b.weights):
        raise SpecError(f"backbone '{name}' names its own tiny weights file ({b.weights}), and --weights demo "
                        "asks for the demo weights", spec.loc_of("backbones", name, "weights"),
                        hint="leave out --weights demo, or the spec's weights")
    try:
        path, entry = demo_file(family.name, size)
    except NoDemoWeights as e:
        raise SpecError(f"backbone '{name}': {e}", spec.loc_of("backbones", name, "size"),
                        hint="leave out --weights demo for this spec (random tiny weights)") from None
    return str(path), entry.get("activation")


def backbone_requests(spec: Spec, device, tiny: bool, load_weights: bool,
                      weights_kind: str | None = None) -> dict[str, BackboneRequest]:
    """What each of the spec's backbones asks of its family. `weights_kind` "demo" swaps every (tiny) backbone's
    weights for its demo file, loaded by the family's own loader, whether or not `load_weights` (tiny never loads
    the spec's)."""
    video = spec.video_input()
    out = {}
    for name, b in spec.backbones.items():
        family = get_family(b.family, spec.loc_of("backbones", name, "family"))
        size = check_size(family, b.size, spec.loc_of("backbones", name, "size"))
        is_tiny = tiny or b.size == TINY
        activation, load = b.activation, load_weights
        if is_tiny and weights_kind == "demo":
            weights, demo_activation = _demo_request(spec, name, family, size)
            activation = demo_activation or activation  # the spec's states its own weights', not these
            load = True
        elif weights_kind == "random":
            weights = None
        elif b.size == TINY:  # a tiny backbone loads only a local file written for it (tests do this)
            weights = b.weights if b.weights and is_local_path(b.weights) else None
        elif tiny:  # --size tiny: the real size's weights do not fit the tiny variant
            weights = None
        else:
            weights = b.weights if b.weights is not None else family.default_weights(size)
        weights = None if weights == "random" else weights
        if b.activation is not None and b.activation not in family.activations:
            raise SpecError(f"{family.name} backbones have a fixed activation; 'activation' is for "
                            f"{', '.join(f.name for f in own_families().values() if f.activations)}",
                            spec.loc_of("backbones", name, "activation"), hint="remove 'activation'")
        request = Request(size=size, tiny=is_tiny, weights=weights,
                          load=load and weights is not None and str(device) != "meta",
                          image_size=b.image_size or (video.size if video else 224),
                          frames=b.frames or (video.frames if video else 8), device=device, activation=activation)
        out[name] = BackboneRequest(family, request, spec.loc_of("backbones", name, "weights"))
    return out


def backbone_shapes(spec: Spec, tiny: bool = False, weights_kind: str | None = None) -> dict[str, BackboneShape]:
    """Each backbone as the checks see it (its family's check of the request run: weights, activation)."""
    return {name: r.family.shape(r.request, r.loc, name)
            for name, r in backbone_requests(spec, "meta", tiny, False, weights_kind).items()}


def site_info(graph: Graph, a: Attachment, layer: int, shared=None) -> SiteInfo:
    """What a kind's builder (and its check) knows about one layer of one placement."""
    tower = graph.shape(a.backbone, a.tower)
    request = graph.shapes[a.backbone].request
    in_dim, out_dim = tower.point_dims(a.point) if layer >= 0 else (tower.width, tower.width)
    if a.point == "output":
        in_dim = out_dim = tower.out_dim
    patch = tower.patch
    grid = (request.image_size // patch,) * 2 if patch else None
    return SiteInfo(backbone=a.backbone, tower=a.tower, point=a.point, use=a.use, layer=layer, in_dim=in_dim,
                    out_dim=out_dim, width=tower.width, heads=tower.heads, layout=tower.layout,
                    frames=request.frames, grid=grid, prefix=tower.prefix, patch=patch, shared=shared)


def node_info(graph: Graph, name: str) -> NodeInfo:
    """What a flow component's builder (and its check) knows: its input and output types, the class count."""
    call = graph.calls[name]
    return NodeInfo(tuple(graph.types[i] for i in call.inputs), graph.types[call.out], graph.num_classes,
                    Path(graph.spec._file).parent)


def blamed(spec: Spec, component: str, error: ValueError) -> SpecError:
    """A builder's refusal (a ValueError about its inputs) as an error at the component in the spec."""
    return SpecError(f"component '{component}': {error}", spec.key_loc_of("components", component))


def _check_builders(graph: Graph) -> None:
    """Every refusal a build would make, in the order the compiler builds: attached components, then the flow."""
    for a in graph.attachments.values():
        if a.kind.check is None:
            continue
        for layer in a.layers or [-1]:
            try:
                a.kind.check(a.params, site_info(graph, a, layer))
            except ValueError as e:
                raise blamed(graph.spec, a.name, e) from None
    for name, call in graph.calls.items():
        if call.kind.check is not None:
            try:
                call.kind.check(call.params, node_info(graph, name))
            except ValueError as e:
                raise blamed(graph.spec, call.component, e) from None


def declared_trainable(graph: Graph) -> set[str]:
    """The parts that will have trainable parameters once built, from the declarations: what the compiler's
    freezing finds (tests/test_declared.py holds the two equal for every shipped spec)."""
    spec = graph.spec
    parts = {a.name for a in graph.attachments.values() if a.kind.has_parameters(a.params)}
    parts |= {c.component for c in graph.calls.values() if c.kind.has_parameters(c.params)}
    trainable = {p for p in parts if not spec.components[p].frozen}
    used = {(r.backbone, r.tower) for r in graph.runs.values()} | {(a.backbone, a.tower)
                                                                  for a in graph.attachments.values()}
    for name, b in spec.backbones.items():
        if not b.frozen and backbone_trains(spec.backbones[name].family, graph.shapes[name].request,
                                            [t for t in graph.shapes[name].towers if (name, t) in used],
                                            b.unfrozen_except):
            trainable.add(name)
    return trainable


def needs_build(graph: Graph) -> bool:
    """Whether only a meta-device build can finish checking this spec (see the module's docstring): a part
    whose params only its built tower can check, or whose kind does not say whether it trains."""
    parts = [*graph.attachments.values(), *graph.calls.values()]
    return any((p.kind.needs_tower is not None and p.kind.needs_tower(p.params)) or p.kind.has_parameters(p.params)
               is None for p in parts)


def check_spec(spec: Spec, tiny: bool = False, weights_kind: str | None = None,
               num_classes: int | None = None) -> Graph:
    """Every check of the compiler, against declarations: the checked graph, or a SpecError. Where a kind does
    not say whether it trains (`needs_build`), what trains is checked once the compiler has built it."""
    graph = build_graph(spec, backbone_shapes(spec, tiny, weights_kind), num_classes)
    _check_builders(graph)
    if not needs_build(graph):
        check_training(graph, declared_trainable(graph))
    return graph

