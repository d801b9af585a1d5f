"""spec -> graph -> plan -> nn.Module.

The spec is first checked against the declarations of its backbones and kinds (graph/declared.py: what
`composer validate` runs, without torch). Then the real backbones are built (weights loaded if asked), attachments are installed at their
sites, flow components are built from the inferred input types, parameters are frozen or not, and the
plan decides where autograd runs.
"""

from __future__ import annotations

import fnmatch
from contextlib import contextmanager
from dataclasses import dataclass, replace

import torch
from torch import nn

from composer.backbones.backbone import Backbone
from composer.backbones.demo_weights import WEIGHTS_KINDS
from composer.compiler.model import ComposedModel
from composer.compiler.peft_import import read_adapter, starts_from
from composer.compiler.precision import store_frozen_in
from composer.errors import SpecError
from composer.graph.checks import check_training
from composer.graph.declared import backbone_requests, blamed, check_spec, node_info, site_info
from composer.graph.nodes import Attachment, Graph
from composer.graph.plan import Recompute, make_plan
from composer.spec.ir import Spec
from composer.uses import USES

TINY_SIZE = 64  # `--size tiny` also means 64 px clips (docs/design-notes.md)


def tiny_sets(sets: list[str], tiny: bool) -> list[str]:
    """The --set list a spec is loaded with: at tiny size, inputs.video.size is TINY_SIZE unless a --set says
    otherwise. The one place this rule lives (run, resume, predict, sweep and the card's command read it)."""
    if tiny and not any(s.startswith("inputs.video.size=") for s in sets):
        return [*sets, f"inputs.video.size={TINY_SIZE}"]
    return list(sets)


@dataclass(frozen=True)
class BuildOptions:
    device: str | torch.device = "meta"
    tiny: bool = False  # swap every backbone for its tiny random-weight variant
    load_weights: bool = False  # load pretrained weights (ignored for tiny and on the meta device)
    plan: bool = True
    recompute: bool | Recompute = True  # True/False: every eligible frozen block recomputed or none; or a plan.Recompute choice
    num_classes: int | None = None  # the dataset's class count (default: the spec's classes.count)
    precision: str = "fp32"  # the run's resolved precision: bf16/fp16 store frozen layer weights in it (precision.py)
    weights: str | None = None  # None: the default (random at tiny size); "demo": the demo weights (tiny only);
    #                             "random": random weights, stated


def check_weights_kind(weights: str | None, tiny: bool) -> None:
    """--weights: demo weights exist only for the tiny variants."""
    if weights not in (None, *WEIGHTS_KINDS):
        raise SpecError(f"unknown weights '{weights}'", expected=", ".join(WEIGHTS_KINDS))
    if weights == "demo" and not tiny:
        raise SpecError("--weights demo needs --size tiny (the demo weights are pretrained tiny backbones); add "
                        "--size tiny, or leave --weights out to use the spec's weights")


def make_backbones(spec: Spec, device, tiny: bool, load_weights: bool,
                   weights_kind: str | None = None) -> dict[str, Backbone]:
    """The spec's backbones, built (graph/declared.py says what each asks of its family)."""
    return {name: r.family.build(r.request, r.loc, name)
            for name, r in backbone_requests(spec, device, tiny, load_weights, weights_kind).items()}


def _install(graph: Graph, a: Attachment, device, shared: nn.Module | None) -> nn.Module | None:
    """Build one placement's modules and hook them into its tower with its use; returns what the model
    should own."""
    tower, use = graph.backbones[a.backbone].towers[a.tower], USES[a.use]
    modules = nn.ModuleDict()
    for layer in a.layers or [-1]:
        hooks = tower.hooks.blocks[layer] if layer >= 0 else tower.hooks.tower
        if not use.builds:  # a tap records under its name
            use.hook(hooks, a.point, (a.name, a.params.detach))
            continue
        with torch.device(device):
            module = a.kind.build(a.params, site_info(graph, a, layer, shared))
        if a.kind.init_from_tower is not None:
            a.kind.init_from_tower(module, tower)
        use.hook(hooks, a.point, module)
        modules[str(layer + 1) if layer >= 0 else a.point] = module
    return modules or None


def _inject(graph: Graph, name: str, device) -> dict[str, str]:
    """A backbone-level use (weight deltas): one installation over every placement's modules on each
    backbone; returns the backbone parameter names it added, with their owner `name`."""
    placements = graph.placements(name)
    a = placements[0]
    with torch.device(device):
        built = a.kind.build(a.params, site_info(graph, a, a.layers[0] if a.layers else -1))
    owned = {}
    for backbone in dict.fromkeys(p.backbone for p in placements):
        paths = [path for p in placements if p.backbone == backbone for path in p.linear_paths]
        for pname in USES[a.use].inject(graph.backbones[backbone], paths, built, name):
            owned[f"{backbone}.{pname}"] = name
    return owned


def _start_weight_deltas(spec: Spec, graph: Graph) -> None:
    """Weight deltas that start from a PEFT adapter folder (`weights: peft:DIR`) take its tensors now (on the
    meta device the folder is checked against the component, and nothing is copied)."""
    for name in spec.components:
        where = starts_from(graph, name)
        if where is not None:
            with _blame(spec, name):
                read_adapter(spec, graph, name, where)


def _install_component(graph: Graph, name: str, device) -> nn.Module | None:
    """All placements of one attached component; a kind spanning several sites also gets its shared part."""
    placements = graph.placements(name)
    kind, params = placements[0].kind, placements[0].params
    shared = None
    if kind.build_shared is not None:
        sites = [site_info(graph, a, layer) for a in placements for layer in a.layers or [-1]]
        with torch.device(device):
            shared = kind.build_shared(params, sites)
    built = [(a, _install(graph, a, device, shared)) for a in placements]
    if all(m is None for _, m in built):
        return None
    if len(built) == 1 and shared is None:
        return built[0][1]
    out = nn.ModuleDict({f"{a.backbone}_{a.tower}": m for a, m in built if m is not None})
    if shared is not None:
        out["shared"] = shared
    return out


def _freeze(spec: Spec, graph: Graph, components: nn.ModuleDict, owners: dict[str, str]) -> set[str]:
    """Set requires_grad everywhere; return the names of parts that train. `owners`: backbone parameters
    (backbone.name) that belong to a component."""
    trainable: set[str] = set()
    for name, backbone in graph.backbones.items():
        b = spec.backbones[name]
        for pname, param in backbone.named_parameters():
            owner = owners.get(f"{name}.{pname}")
            if owner is not None:
                param.requires_grad_(not spec.components[owner].frozen)
                if param.requires_grad:
                    trainable.add(owner)
            else:
                keep = any(fnmatch.fnmatch(pname, f"model.{g}*") or fnmatch.fnmatch(pname, g)
                           for g in b.unfrozen_except)
                param.requires_grad_(not b.frozen and not keep)
                if param.requires_grad:
                    trainable.add(name)
    for name, module in components.items():
        for param in module.parameters():
            param.requires_grad_(not spec.components[name].frozen)
        if any(p.requires_grad for p in module.parameters()):
            trainable.add(name)
    return trainable


@contextmanager
def _blame(spec: Spec, component: str):
    """A builder's refusal (a ValueError about its inputs) becomes an error at the component in the spec."""
    try:
        yield
    except ValueError as e:
        raise blamed(spec, component, e) from None


def compile_spec(spec: Spec, options: BuildOptions = BuildOptions()):
    """Check and build a spec. Raises SpecError (with locations) for any problem in the spec.

    Tiny random weights are always drawn on the CPU and then moved: CUDA's generator draws other numbers
    from the same seed, so a tiny checkpoint trained on one device would silently meet another frozen
    backbone on the other."""
    if options.tiny and str(options.device) not in ("cpu", "meta"):
        return compile_spec(spec, replace(options, device="cpu")).to(options.device)
    check_weights_kind(options.weights, options.tiny)
    graph = check_spec(spec, options.tiny, options.weights, options.num_classes)  # nothing built yet
    graph.backbones = make_backbones(spec, options.device, options.tiny, options.load_weights, options.weights)
    used = {(r.backbone, r.tower) for r in graph.runs.values()} | {(a.backbone, a.tower)
                                                                  for a in graph.attachments.values()}
    for name, backbone in graph.backbones.items():
        for tower in [t for t in backbone.towers if (name, t) not in used]:
            backbone.drop_tower(tower)
    components = nn.ModuleDict()
    owners: dict[str, str] = {}  # backbone parameters a component owns (weight deltas)
    for name in dict.fromkeys(a.name for a in graph.attachments.values()):
        with _blame(spec, name):
            if USES[graph.placements(name)[0].use].inject is not None:
                owners.update(_inject(graph, name, options.device))
                continue
            module = _install_component(graph, name, options.device)
        if module is not None:
            components[name] = module
    for use in dict.fromkeys(USES[a.use] for a in graph.attachments.values()):
        if use.finish is not None:
            for backbone in graph.backbones.values():
                use.finish(backbone)
    _start_weight_deltas(spec, graph)
    for name, call in graph.calls.items():
        if call.component in components:
            continue
        with torch.device(options.device), _blame(spec, call.component):
            components[call.component] = call.kind.build(call.params, node_info(graph, name))
    trainable = _freeze(spec, graph, components, owners)
    check_training(graph, trainable)
    plan = make_plan(graph, trainable, options.plan, options.recompute)
    model = ComposedModel(graph, components, plan, trainable, owners)
    store_frozen_in(model, options.precision)
    return model
