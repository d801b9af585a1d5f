"""spec -> graph -> plan -> nn.Module.

The spec is first checked against backbones built on the meta device (structure only, instant even for
ViT-L). Then the real backbones are built (weights loaded if asked), attachments are installed at their
sites, flow components are built from the inferred input types, parameters are frozen or not, and the
plan decides where autograd runs.
"""

from __future__ import annotations

import fnmatch
from contextlib import contextmanager
from pathlib import Path
from dataclasses import dataclass, replace

import torch
from torch import nn

from composer.backbones.demo_weights import KINDS as WEIGHTS_KINDS
from composer.backbones.demo_weights import NoDemoWeights, demo_file
from composer.backbones.registry import FAMILIES, TINY, Backbone, Request, check_size, get_family
from composer.backbones.weights import is_local_path
from composer.build.precision import store_frozen_in
from composer.components.registry import NodeInfo, SiteInfo
from composer.errors import SpecError
from composer.graph.graph import Attachment, Graph, build_graph
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


def _demo_request(spec: Spec, name: str, family, size: str) -> tuple[str, str | None]:
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


def make_backbones(spec: Spec, device, tiny: bool, load_weights: bool,
                   weights_kind: str | None = None) -> dict[str, Backbone]:
    """The spec's backbones. `weights_kind` "demo" swaps every (tiny) backbone's weights for its demo file,
    loaded by the family's own loader, whether or not `load_weights` (tiny never loads the spec's)."""
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
                            f"{', '.join(f.name for f in FAMILIES.values() if f.activations)}",
                            spec.loc_of("backbones", name, "activation"), hint="remove 'activation'")
        request = Request(size=size, tiny=is_tiny, weights=weights,
                          load=load and weights is not None and str(device) != "meta",
                          image_size=b.image_size or (video.size if video else 224),
                          frames=b.frames or (video.frames if video else 8), device=device, activation=activation)
        out[name] = family.build(request, spec.loc_of("backbones", name, "weights"), name)
    return out


def _site_info(graph: Graph, a: Attachment, layer: int) -> SiteInfo:
    tower = graph.tower(a.backbone, a.tower)
    request = graph.backbones[a.backbone].request
    in_dim, out_dim = tower.point_dims(a.point) if layer >= 0 else (tower.width, tower.width)
    if a.point == "output":
        in_dim = out_dim = tower.out_dim
    patch = getattr(tower, "patch", None)
    grid = (request.image_size // patch,) * 2 if patch else None
    return SiteInfo(backbone=a.backbone, tower=a.tower, point=a.point, use=a.use, layer=layer, in_dim=in_dim,
                    out_dim=out_dim, width=tower.width, heads=tower.heads, layout=tower.layout,
                    frames=request.frames, grid=grid, prefix=tower.prefix, patch=patch)


def _install(graph: Graph, a: Attachment, device, shared: nn.Module | None) -> nn.Module | None:
    """Build one placement's modules and hook them into its tower with its use; returns what the model
    should own."""
    tower, use = graph.tower(a.backbone, a.tower), USES[a.use]
    modules = nn.ModuleDict()
    for layer in a.layers or [-1]:
        hooks = tower.hooks.blocks[layer] if layer >= 0 else tower.hooks.tower
        if not use.builds:  # a tap records under its name
            use.hook(hooks, a.point, (a.name, a.params.detach))
            continue
        with torch.device(device):
            module = a.kind.build(a.params, replace(_site_info(graph, a, layer), shared=shared))
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
        built = a.kind.build(a.params, _site_info(graph, a, a.layers[0] if a.layers else -1))
    owned = {}
    for backbone in dict.fromkeys(p.backbone for p in placements):
        paths = [path for p in placements if p.backbone == backbone for path in p.linear_paths]
        for pname in USES[a.use].inject(graph.backbones[backbone], paths, built, name):
            owned[f"{backbone}.{pname}"] = name
    return owned


def _install_component(graph: Graph, name: str, device) -> nn.Module | None:
    """All placements of one attached component; a kind spanning several sites also gets its shared part."""
    placements = graph.placements(name)
    kind, params = placements[0].kind, placements[0].params
    shared = None
    if kind.build_shared is not None:
        sites = [_site_info(graph, a, layer) for a in placements for layer in a.layers or [-1]]
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
        raise SpecError(f"component '{component}': {e}", spec.key_loc_of("components", component)) from None


def compile_spec(spec: Spec, options: BuildOptions = BuildOptions()):
    """Check and build a spec. Raises SpecError (with locations) for any problem in the spec.

    Tiny random weights are always drawn on the CPU and then moved: CUDA's generator draws other numbers
    from the same seed, so a tiny checkpoint trained on one device would silently meet another frozen
    backbone on the other."""
    from composer.build.model import ComposedModel

    if options.tiny and str(options.device) not in ("cpu", "meta"):
        return compile_spec(spec, replace(options, device="cpu")).to(options.device)
    from composer.graph.checks import check_training

    check_weights_kind(options.weights, options.tiny)
    meta = make_backbones(spec, "meta", options.tiny, load_weights=False, weights_kind=options.weights)
    graph = build_graph(spec, meta, options.num_classes)
    if str(options.device) != "meta" or options.load_weights:
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
    for name, call in graph.calls.items():
        if call.component in components:
            continue
        info = NodeInfo(tuple(graph.types[i] for i in call.inputs), graph.types[call.out], graph.num_classes,
                        Path(spec._file).parent)
        with torch.device(options.device), _blame(spec, call.component):
            components[call.component] = call.kind.build(call.params, info)
    trainable = _freeze(spec, graph, components, owners)
    check_training(graph, trainable)
    plan = make_plan(graph, trainable, options.plan, options.recompute)
    model = ComposedModel(graph, components, plan, trainable, owners)
    store_frozen_in(model, options.precision)
    return model
