"""Checks that need to know what trains: every trainable part must reach a loss, and every loss must
have something trainable upstream. Run by the compiler once parameters are frozen or not."""

from __future__ import annotations

import networkx as nx

from composer.errors import Problem, SpecError
from composer.graph.graph import Graph


def nodes_of(graph: Graph, part: str) -> list[str]:
    """Graph nodes through which a component or backbone influences the flow."""
    placements = graph.placements(part)
    if placements:
        return [f"a:{a.key}" for a in placements]
    if part in graph.spec.backbones:
        return [f"r:{r.id}" for r in graph.runs.values() if r.backbone == part and r.active]
    return [f"c:{c.out}" for c in graph.calls.values() if c.component == part]


def check_training(graph: Graph, trainable: set[str]) -> None:
    spec, g = graph.spec, graph.g
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
