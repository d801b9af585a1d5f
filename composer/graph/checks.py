"""Checks that need to know what trains: every trainable part must reach a loss, and every loss must
have something trainable upstream. Run by the compiler once parameters are frozen or not."""

from __future__ import annotations

import networkx as nx

from composer.errors import Problem, SpecError, did_you_mean
from composer.graph.nodes import Graph


def nodes_of(graph: Graph, part: str) -> list[str]:
    """Graph nodes through which a component or backbone influences the flow."""
    placements = graph.placements(part)
    if placements:
        return [f"a:{a.key}" for a in placements]
    if part in graph.spec.backbones:
        return [f"r:{r.id}" for r in graph.runs.values() if r.backbone == part and r.active]
    return [f"c:{c.out}" for c in graph.calls.values() if c.component == part]


def _check_stages(graph: Graph, trainable: set[str]) -> list[Problem]:
    """With stages, each stage's parts must train and reach that stage's losses, and vice versa."""
    spec, g = graph.spec, graph.g
    problems: list[Problem] = []
    parts = set(spec.components) | set(spec.backbones)
    trained_somewhere: set[str] = set()
    for stage_name, stage in spec.stages.items():
        for i, part in enumerate(stage.trains):
            loc = spec.loc_of("stages", stage_name, "trains", i)
            if part not in parts:
                problems.append(Problem(f"stage '{stage_name}' trains '{part}', which is neither a component nor "
                                        "a backbone", loc, hint=did_you_mean(part, parts)))
                continue
            if part not in trainable:
                problems.append(Problem(f"stage '{stage_name}' trains '{part}', which has no trainable parameters",
                                        loc, hint="it is frozen (or has no parameters); remove it from the stage"))
                continue
            trained_somewhere.add(part)
            if not any(nx.has_path(g, node, f"t:{loss}") for node in nodes_of(graph, part)
                       for loss in stage.losses if f"t:{loss}" in g):
                problems.append(Problem(f"'{part}' receives no gradient in stage '{stage_name}': it reaches none "
                                        f"of the stage's losses ({', '.join(stage.losses)})", loc))
        for loss in stage.losses:
            if f"t:{loss}" not in g:
                continue
            upstream = nx.ancestors(g, f"t:{loss}")
            if not any(node in upstream for part in stage.trains if part in trainable
                       for node in nodes_of(graph, part)):
                problems.append(Problem(f"loss '{loss}' has nothing that stage '{stage_name}' trains upstream",
                                        spec.key_loc_of("stages", stage_name, "losses", loss)))
    for part in sorted(trainable - trained_somewhere):
        loc = spec.key_loc_of("components", part) if part in spec.components else spec.key_loc_of("backbones", part)
        problems.append(Problem(f"'{part}' has trainable parameters but no stage trains it", loc,
                                hint="add it to a stage's trains, or mark it frozen"))
    return problems


def check_training(graph: Graph, trainable: set[str]) -> None:
    spec, g = graph.spec, graph.g
    if spec.stages:
        problems = _check_stages(graph, trainable)
        if problems:
            raise SpecError(problems)
        return
    problems = []
    has_loss = "loss" in g
    for part in sorted(trainable):
        loc = spec.key_loc_of("components", part) if part in spec.components else spec.key_loc_of("backbones", part)
        what = "backbone" if part in spec.backbones else "component"
        if not has_loss:
            problems.append(Problem(f"{what} '{part}' has trainable parameters but the spec has no losses", loc,
                                    hint="add a loss under 'losses', or mark it frozen"))
            continue
        if not any(nx.has_path(g, node, "loss") for node in nodes_of(graph, part)):
            problems.append(Problem(f"{what} '{part}' receives no gradient: nothing it computes reaches a loss",
                                    loc, hint="use its output on the way to a loss, mark it frozen, or remove it"))
    for name in spec.losses:
        if f"t:{name}" not in g:
            continue
        upstream = nx.ancestors(g, f"t:{name}")
        if not any(node in upstream for part in trainable for node in nodes_of(graph, part)):
            problems.append(Problem(f"loss '{name}' has nothing trainable upstream: it cannot change anything",
                                    spec.key_loc_of("losses", name),
                                    hint="attach a trainable component before it, or unfreeze a backbone"))
    if problems:
        raise SpecError(problems)
