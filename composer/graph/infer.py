"""Every tensor's type, inferred through the graph in order from the inputs' declared shapes, and the outputs
checked: each loss is a scalar, predict is [B, C] class scores, and nothing is computed but never used."""

from __future__ import annotations

from composer.errors import Problem, did_you_mean
from composer.graph.nodes import Graph, TowerRun
from composer.spec.ir import ClassesInput, LabelInput, Spec, VideoInput
from composer.tensor_types import SCALAR, ShapeError, TType, match


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


def infer_types(graph: Graph, problems: list[Problem]) -> None:
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


def check_outputs(graph: Graph, problems: list[Problem]) -> None:
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
