"""The spec as a graph: named tensors, the calls that make them, tower runs and their attachments.

`build_graph` resolves every name in a validated spec against the registry and the backbones' declared
shapes (nothing built, no torch), infers every tensor's type, and checks the whole composition. Each problem is reported at the place in the spec that causes it.

What the graph holds and its node ids: composer/graph/nodes.py. Attachments are resolved in attach.py, types
inferred and outputs checked in infer.py; the flow's steps are resolved here.
"""

from __future__ import annotations

import networkx as nx

from composer.backbones.shape import BackboneShape
from composer.components.registry import KINDS
from composer.errors import Loc, Problem, SpecError, did_you_mean
from composer.graph.attach import checked_params, kind_named, resolve_attachments
from composer.graph.infer import check_outputs, infer_types
from composer.graph.nodes import PRETRAINED, Call, Graph, TowerRun
from composer.spec.ir import ClassesInput, Spec


def _raise(problems: list[Problem]) -> None:
    if problems:
        raise SpecError(problems)


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
    kind = kind_named(comp.kind, spec.loc_of("components", step.call, "kind"), [])
    params = checked_params(kind, step.call, comp.params, spec, []) if kind else None
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


def build_graph(spec: Spec, shapes: dict[str, BackboneShape], num_classes: int | None = None) -> Graph:
    """Resolve and check a spec against its backbones' shapes; raise SpecError with every problem."""
    graph = Graph(spec, shapes)
    graph.num_classes = num_classes or next(
        (i.count for i in spec.inputs.values() if isinstance(i, ClassesInput)), 0)
    problems: list[Problem] = []
    resolve_attachments(graph, problems)
    _raise(problems)
    _resolve_flow(graph, problems)
    _raise(problems)
    _check_cycles(graph)
    infer_types(graph, problems)
    _raise(problems)
    check_outputs(graph, problems)
    _raise(problems)
    return graph
