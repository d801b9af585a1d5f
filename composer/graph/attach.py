"""Attachments: each component placed at its site in a backbone tower (the kind's params checked, the site
resolved against the tower's declared points and layers, two claims on one place refused)."""

from __future__ import annotations

from collections import defaultdict

from composer.components.registry import Kind, Params, get_kind, validate_params
from composer.errors import Loc, Problem, SpecError, did_you_mean
from composer.graph.nodes import Attachment, Graph
from composer.spec.ir import Spec
from composer.spec.site import parse_site
from composer.uses import USES


def resolve_attachments(graph: Graph, problems: list[Problem]) -> None:
    spec = graph.spec
    claimed: dict[tuple, list[str]] = defaultdict(list)
    for name, comp in spec.components.items():
        kind = kind_named(comp.kind, spec.loc_of("components", name, "kind"), problems)
        if kind is None:
            continue
        params = checked_params(kind, name, comp.params, spec, problems)
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


def kind_named(name: str, loc: Loc | None, problems: list[Problem]) -> Kind | None:
    try:
        return get_kind(name, loc)
    except SpecError as e:
        problems.extend(e.problems)
        return None


def checked_params(kind: Kind, name: str, params: dict, spec: Spec, problems: list[Problem]) -> Params | None:
    def where(path: tuple, key: bool) -> Loc | None:
        full = ("components", name, "params") + path
        return spec.key_loc_of(*full) if key and path else spec.loc_of(*full)

    try:
        return validate_params(kind, params, where)
    except SpecError as e:
        problems.extend(e.problems)
        return None
