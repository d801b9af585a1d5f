"""The spec as a graph: named tensors, the calls that make them, tower runs and their attachments.

`build_graph` resolves every name in a validated spec against the registry and the backbones' declared
shapes (nothing built, no torch), infers every tensor's type, and checks the whole composition. Each problem is reported at the place in the spec that causes it.

Node ids in the networkx DiGraph:
    t:<name>   a tensor (spec input, flow output, or a tap's output)
    c:<name>   the flow step that computes tensor <name> with a component
    r:<id>     one run of a backbone tower (several flow steps may read different outputs of it)
    a:<name>   an attached component (an edge into the tower run it changes)
    loss       the weighted sum of the losses
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from composer.backbones.shape import BackboneShape, TowerShape
from composer.components.registry import KINDS, Kind, Params, get_kind, validate_params
from composer.errors import Loc, Problem, SpecError, did_you_mean
from composer.spec.ir import ClassesInput, LabelInput, Spec, VideoInput
from composer.spec.site import Site, parse_site
from composer.tensor_types import SCALAR, ShapeError, TType, match
from composer.uses import USES

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


def _raise(problems: list[Problem]) -> None:
    if problems:
        raise SpecError(problems)


def input_types(spec: Spec) -> dict[str, TType]:
    types = {}
    for name, inp in spec.inputs.items():
        if isinstance(inp, VideoInput):
            window = (inp.window,) if inp.window > 1 else ()
            types[name] = TType(("B", inp.frames) + window + (3, inp.size, inp.size))
        elif isinstance(inp, ClassesInput):
            types[name] = TType(("C",), "str")
        elif isinstance(inp, LabelInput):
            types[name] = TType(("B",), "long")
    return types


# ---------------------------------------------------------------- attachments
def _resolve_attachments(graph: Graph, problems: list[Problem]) -> None:
    spec = graph.spec
    claimed: dict[tuple, list[str]] = defaultdict(list)
    for name, comp in spec.components.items():
        kind = _kind(comp.kind, spec.loc_of("components", name, "kind"), problems)
        if kind is None:
            continue
        params = _params(kind, name, comp.params, spec, problems)
        if comp.site is None:
            if kind.attaches and name not in {s.call for s in spec.flow.values()}:
                problems.append(Problem(f"component '{name}' ({kind.name}) attaches at a site, but has none",
                                        comp.loc, expected=f"site: <backbone>.<tower>.blocks[...].<point>, "
                                        f"points: {', '.join(kind.points)}"))
            if comp.use is not None:
                problems.append(Problem(f"'use' needs a site: component '{name}' is called in the flow",
                                        spec.loc_of("components", name, "use")))
            continue
        site_loc = spec.loc_of("components", name, "site")
        if not kind.attaches:
            problems.append(Problem(f"{kind.name} is called in the flow, it cannot attach at a site", site_loc,
                                    hint=f"remove 'site' and call it: x = {name}(...)"))
            continue
        if params is None:
            continue
        sites = [comp.site] if isinstance(comp.site, str) else list(comp.site)
        if len(sites) > 1 and kind.build_shared is None and not any(USES[u].spans_sites for u in kind.uses):
            problems.append(Problem(f"{kind.name} attaches at one site; give a list only to kinds that span "
                                    "towers (e.g. msta)", site_loc, hint="use one component per site"))
            continue
        for i, text in enumerate(sites):
            loc = spec.loc_of("components", name, "site", i) if len(sites) > 1 else site_loc
            key = name if len(sites) == 1 else f"{name}@{i + 1}"
            try:
                attachment = _attachment(graph, name, key, text, comp.use, kind, params, loc)
            except SpecError as e:
                problems.extend(e.problems)
                continue
            graph.attachments[key] = attachment
            if USES[attachment.use].exclusive:
                for layer in attachment.layers or [-1]:
                    claimed[(attachment.backbone, attachment.tower, layer, attachment.point, attachment.use)].append(key)
    for (backbone, tower, layer, point, use), names in claimed.items():
        if len(names) > 1:
            where = f"block {layer + 1}" if layer >= 0 else "the tower"
            why = USES[use].exclusive
            problems.append(Problem(
                f"components {', '.join(repr(n) for n in names)} both take {backbone}.{tower} {where} "
                f"point '{point}' as {use}", graph.attachments[names[1]].loc,
                hint=f"{why}; attach one of them elsewhere or merge them into one component"))


def _attachment(graph: Graph, name: str, key: str, text: str, use: str | None, kind: Kind, params: Params,
                loc: Loc | None) -> Attachment:
    site = parse_site(text, loc)
    if site.backbone not in graph.shapes:
        raise SpecError(f"site '{text}' names backbone '{site.backbone}', which the spec does not declare", loc,
                        expected=", ".join(graph.shapes) or "a backbone under 'backbones'",
                        hint=did_you_mean(site.backbone, graph.shapes))
    towers = graph.shapes[site.backbone].towers
    if site.tower not in towers:
        raise SpecError(f"{site.backbone} has no tower '{site.tower}'", loc, expected=", ".join(towers),
                        hint=did_you_mean(site.tower, towers))
    tower = towers[site.tower]
    allowed = tower.points if site.at_blocks else tower.tower_points
    if site.point not in allowed:
        where = "in a block" if site.at_blocks else "on a tower (outside blocks[...])"
        raise SpecError(f"'{site.point}' is not a point {where} of {site.backbone}.{site.tower}", loc,
                        expected=", ".join(allowed), hint=did_you_mean(site.point, allowed))
    if site.point not in kind.points:
        raise SpecError(f"{kind.name} cannot attach at '{site.point}'", loc, expected=", ".join(kind.points))
    use = use or kind.uses[0]
    if use not in kind.uses:
        raise SpecError(f"{kind.name} cannot be used as '{use}'", graph.spec.loc_of("components", name, "use"),
                        expected=", ".join(kind.uses))
    accepted = USES[use].points(tower, site.at_blocks)
    if site.point not in accepted:
        where = "in a block" if site.at_blocks else "on the tower (outside blocks[...])"
        others = [p for p in kind.points if p in accepted]
        raise SpecError(f"{kind.name} cannot be used as {use} at '{site.point}' {where} of {site.backbone}."
                        f"{site.tower} ({USES[use].summary})", loc,
                        expected=", ".join(others) or f"no point {where} of this tower")
    layers = site.resolve(tower.depth, loc) if site.at_blocks else []
    if site.at_blocks and not layers:
        raise SpecError(f"site '{text}' selects no block", loc)
    attachment = Attachment(name, key, kind, params, use, site, layers, graph.spec.components[name].loc)
    if USES[use].targets is not None:
        paths = USES[use].targets(tower, layers, site.point)
        if None in paths:
            raise SpecError(f"'{site.point}' on {site.backbone}.{site.tower} is not one linear module in every "
                            f"selected block", loc)
        attachment.linear_paths = paths
    return attachment


def _kind(name: str, loc: Loc | None, problems: list[Problem]) -> Kind | None:
    try:
        return get_kind(name, loc)
    except SpecError as e:
        problems.extend(e.problems)
        return None


def _params(kind: Kind, name: str, params: dict, spec: Spec, problems: list[Problem]) -> Params | None:
    def where(path: tuple, key: bool) -> Loc | None:
        full = ("components", name, "params") + path
        return spec.key_loc_of(*full) if key and path else spec.loc_of(*full)

    try:
        return validate_params(kind, params, where)
    except SpecError as e:
        problems.extend(e.problems)
        return None


# ---------------------------------------------------------------- flow
def _resolve_flow(graph: Graph, problems: list[Problem]) -> None:
    spec, g = graph.spec, graph.g
    known = set(spec.inputs)
    for name in spec.inputs:
        g.add_node(f"t:{name}", role="input")
    clashes = {"backbone": set(spec.backbones), "component": set(spec.components)}
    for out, step in spec.flow.items():
        for what, names in clashes.items():
            if out in names:
                problems.append(Problem(f"tensor '{out}' has the name of a {what}", spec.key_loc_of("flow", out),
                                        hint="tensors, components and backbones share one namespace; rename one"))
        if out in spec.inputs:
            problems.append(Problem(f"'{out}' is already an input of the spec", spec.key_loc_of("flow", out)))
    taps = {a.name for a in graph.attachments.values() if a.use == "tap"}
    known |= set(spec.flow) | taps
    called = set()
    for out, step in spec.flow.items():
        loc = spec.loc_of("flow", out, "call")
        for i, arg in enumerate(step.inputs):
            if arg not in known:
                problems.append(Problem(f"'{arg}' is not defined", spec.loc_of("flow", out, "in", i),
                                        expected="a spec input, a flow tensor or a tap",
                                        hint=did_you_mean(arg, sorted(known))))
        head, *rest = step.call.split(".")
        if head in spec.components and not rest:
            called.add(head)
            _component_step(graph, out, step, loc, problems)
        elif head in spec.backbones:
            _tower_step(graph, out, step, rest, loc, problems)
        else:
            options = sorted(set(spec.components) | {f"{b}.{t}" for b, bb in graph.shapes.items() for t in bb.towers})
            problems.append(Problem(f"'{step.call}' is neither a component nor a backbone tower", loc,
                                    expected="a component name, or <backbone>.<tower>[.pretrained][.<output>]",
                                    hint=did_you_mean(step.call, options)))
    for name, comp in spec.components.items():
        kind = KINDS.get(comp.kind)
        if comp.site is None and name not in called and not (kind and kind.attaches):
            problems.append(Problem(f"component '{name}' is never used: it has no site and no flow step calls it",
                                    spec.key_loc_of("components", name)))
        elif comp.site is not None and name in called:
            problems.append(Problem(f"component '{name}' is attached at a site, so the flow cannot call it",
                                    spec.loc_of("components", name, "site")))
    _place_taps(graph, problems)


def _component_step(graph: Graph, out: str, step, loc: Loc | None, problems: list[Problem]) -> None:
    spec = graph.spec
    comp = spec.components[step.call]
    if comp.site is not None:
        return  # reported with the components
    kind = _kind(comp.kind, spec.loc_of("components", step.call, "kind"), [])
    params = _params(kind, step.call, comp.params, spec, []) if kind else None
    if kind is None or params is None:
        return
    if kind.attaches:
        problems.append(Problem(f"{kind.name} attaches at a site; it cannot be called in the flow", loc))
        return
    variadic = bool(kind.inputs) and kind.inputs[-1].endswith("...")
    if len(step.inputs) < len(kind.inputs) or (not variadic and len(step.inputs) != len(kind.inputs)):
        wanted = f"at least {len(kind.inputs)}" if variadic else str(len(kind.inputs))
        problems.append(Problem(f"{kind.name} takes {wanted} input(s) ({', '.join(kind.inputs)}), "
                                f"got {len(step.inputs)}", loc))
        return
    call = Call(out, step.call, kind, params, tuple(step.inputs), step.loc)
    graph.calls[out] = call
    node = f"c:{out}"
    graph.g.add_node(node, role="call", component=step.call, kind=kind.name)
    graph.g.add_edge(node, f"t:{out}")
    graph.g.add_node(f"t:{out}", role="tensor")
    for arg in step.inputs:
        graph.g.add_edge(f"t:{arg}", node)
    graph.producer[out] = node


def _tower_step(graph: Graph, out: str, step, rest: list[str], loc: Loc | None, problems: list[Problem]) -> None:
    backbone = step.call.split(".")[0]
    towers = graph.shapes[backbone].towers
    if not rest or rest[0] not in towers:
        got = rest[0] if rest else ""
        problems.append(Problem(f"{backbone} has no tower '{got}'" if got else f"say which tower of {backbone} to run",
                                loc, expected=", ".join(f"{backbone}.{t}" for t in towers),
                                hint=did_you_mean(got, towers) if got else None))
        return
    tower = towers[rest[0]]
    rest = rest[1:]
    active = True
    if rest and rest[0] == PRETRAINED:
        active, rest = False, rest[1:]
    output = rest[0] if rest else ""
    if len(rest) > 1 or output not in tower.outputs:
        names = [o for o in tower.outputs if o]
        problems.append(Problem(f"{backbone}.{tower.name} has no output '{'.'.join(rest)}'", loc,
                                expected="the default output, or " + ", ".join(names),
                                hint=did_you_mean(".".join(rest), names)))
        return
    if len(step.inputs) != 1:
        problems.append(Problem(f"a tower takes one input, got {len(step.inputs)}", loc))
        return
    run_id = f"{backbone}.{tower.name}{'' if active else '.' + PRETRAINED}({step.inputs[0]})"
    run = graph.runs.get(run_id)
    if run is None:
        run = graph.runs[run_id] = TowerRun(run_id, backbone, tower.name, tuple(step.inputs), active, loc=step.loc)
        graph.g.add_node(f"r:{run_id}", role="run", backbone=backbone, tower=tower.name, active=active)
        graph.g.add_edge(f"t:{step.inputs[0]}", f"r:{run_id}")
    run.outputs[out] = output
    graph.g.add_node(f"t:{out}", role="tensor")
    graph.g.add_edge(f"r:{run_id}", f"t:{out}")
    graph.producer[out] = f"r:{run_id}"


def _place_taps(graph: Graph, problems: list[Problem]) -> None:
    """Every attachment feeds the active runs of its tower; a tap's tensor comes from exactly one run."""
    for key, a in graph.attachments.items():
        name = a.name
        graph.g.add_node(f"a:{key}", role="attachment", kind=a.kind.name, component=name)
        runs = [r for r in graph.runs.values() if r.backbone == a.backbone and r.tower == a.tower and r.active]
        for run in runs:
            graph.g.add_edge(f"a:{key}", f"r:{run.id}")
        if a.use != "tap":
            continue
        if len(runs) != 1:
            why = "the flow never runs it" if not runs else f"the flow runs it {len(runs)} times"
            problems.append(Problem(f"tap '{name}' reads {a.backbone}.{a.tower}, but {why}", a.loc,
                                    hint="a tap reads the one run of its tower that has attachments active"))
            continue
        runs[0].taps.append(name)
        graph.g.add_node(f"t:{name}", role="tensor")
        graph.g.add_edge(f"r:{runs[0].id}", f"t:{name}")
        graph.producer[name] = f"r:{runs[0].id}"


# ---------------------------------------------------------------- checks over the whole graph
def _check_cycles(graph: Graph) -> None:
    try:
        cycle = nx.find_cycle(graph.g)
    except nx.NetworkXNoCycle:
        return
    tensors = [v[2:] for v, _ in cycle if v.startswith("t:")]
    first = next((t for t in tensors if t in graph.spec.flow), tensors[0] if tensors else None)
    raise SpecError(f"the flow has a cycle: {' -> '.join(tensors + tensors[:1])}",
                    graph.spec.key_loc_of("flow", first) if first else None,
                    hint="a tensor cannot depend on itself; break the loop")


def _infer_types(graph: Graph, problems: list[Problem]) -> None:
    spec = graph.spec
    graph.types.update(input_types(spec))
    for node in graph.order():
        if node.startswith("c:"):
            call = graph.calls[node[2:]]
            ins = [graph.types.get(a) for a in call.inputs]
            if None in ins:
                continue
            try:
                graph.types[call.out] = call.kind.infer(call.params, ins)
            except ShapeError as e:
                args = ", ".join(f"{a}: {graph.types[a]}" for a in call.inputs)
                problems.append(Problem(f"{call.component} ({call.kind.name}): {e}", spec.loc_of("flow", call.out, "call"),
                                        hint=f"its inputs are {args}"))
        else:
            _run_types(graph, graph.runs[node[2:]], problems)


def _run_types(graph: Graph, run: TowerRun, problems: list[Problem]) -> None:
    tower = graph.shape(run.backbone, run.tower)
    in_type = graph.types.get(run.inputs[0])
    if in_type is None:
        return
    loc = run.loc
    try:
        if tower.input_dtype == "str":
            match(in_type, ("...", "N"), dtype="str", what=f"input of {run.backbone}.{run.tower}")
        else:
            size = graph.shapes[run.backbone].request.image_size
            match(in_type, ("B", "T", 3, size, size), what=f"input of {run.backbone}.{run.tower}")
            if tower.fixed_frames is not None and in_type.shape[1] != tower.fixed_frames:
                problems.append(Problem(
                    f"{run.backbone}.{run.tower} takes clips of {tower.fixed_frames} frames, this one has "
                    f"{in_type.shape[1]}", loc, hint=f"set backbones.{run.backbone}.frames to the clip's frame count "
                    "(or leave it out to follow the video input)"))
                return
    except ShapeError as e:
        hint = ("a text tower reads strings (class names through a text_template)" if tower.input_dtype == "str"
                else f"{run.backbone} is built for {graph.shapes[run.backbone].request.image_size} px clips "
                     "[B, T, 3, H, W]; set the backbone's image_size or the video input's size")
        problems.append(Problem(str(e), loc, hint=hint))
        return
    for out, output in run.outputs.items():
        graph.types[out] = tower.outputs[output].type_of(in_type)
    for name in run.taps:
        a = graph.attachments[name]
        width = tower.point_dims(a.point)[1] if a.layers else tower.width
        graph.types[name] = tower.tap_type(in_type, max(1, len(a.layers)), tower.tokens(in_type), width)


def _check_outputs(graph: Graph, problems: list[Problem]) -> None:
    spec, g = graph.spec, graph.g
    losses = [(name, weight, ("losses", name)) for name, weight in spec.losses.items()]
    losses += [(name, weight, ("stages", stage, "losses", name))
               for stage, s in spec.stages.items() for name, weight in s.losses.items()]
    for name, weight, path in losses:
        loc = spec.key_loc_of(*path)
        if name not in graph.types:
            if name not in spec.flow:
                problems.append(Problem(f"loss '{name}' is not a tensor of the flow", loc,
                                        hint=did_you_mean(name, spec.flow)))
            continue
        if graph.types[name] != SCALAR:
            problems.append(Problem(f"loss '{name}' must be a scalar, but it is {graph.types[name]}", loc,
                                    hint="compute it with a loss kind such as cross_entropy"))
            continue
        g.add_edge(f"t:{name}", "loss", weight=spec.losses.get(name, weight))
    predict = spec.predict or ("logits" if "logits" in spec.flow else None)
    if predict is not None:
        loc = spec.loc_of("predict") if spec.predict else spec.key_loc_of("flow", "logits")
        if predict not in graph.types:
            if predict not in spec.flow:
                problems.append(Problem(f"predict names '{predict}', which the flow does not compute", loc,
                                        hint=did_you_mean(predict, spec.flow)))
        else:
            t = graph.types[predict]
            if t.dtype != "float" or len(t.shape) != 2 or t.shape[1] not in ("C", graph.num_classes):
                problems.append(Problem(f"predict tensor '{predict}' must be [B, C] class scores, got {t}", loc,
                                        hint=f"one score per class: C is the class count ({graph.num_classes} here)"))
            else:
                graph.predict = predict
    if graph.predict:
        g.add_node("predict", role="output")
        g.add_edge(f"t:{graph.predict}", "predict")
    tapped = {f"r:{r.id}" for r in graph.runs.values() if any(g.out_degree(f"t:{t}") for t in r.taps)}
    for out in spec.flow:
        node = f"t:{out}"
        if graph.producer.get(out) in tapped:
            continue  # a run made for its taps (a side network reading the backbone) need not use its output
        if node in g and g.out_degree(node) == 0:
            problems.append(Problem(f"tensor '{out}' is computed but never used", spec.key_loc_of("flow", out),
                                    hint="use it in another step, list it under losses, or name it in predict"))


def build_graph(spec: Spec, shapes: dict[str, BackboneShape], num_classes: int | None = None) -> Graph:
    """Resolve and check a spec against its backbones' shapes; raise SpecError with every problem."""
    graph = Graph(spec, shapes)
    graph.num_classes = num_classes or next(
        (i.count for i in spec.inputs.values() if isinstance(i, ClassesInput)), 0)
    problems: list[Problem] = []
    _resolve_attachments(graph, problems)
    _raise(problems)
    _resolve_flow(graph, problems)
    _raise(problems)
    _check_cycles(graph)
    _infer_types(graph, problems)
    _raise(problems)
    _check_outputs(graph, problems)
    _raise(problems)
    return graph
