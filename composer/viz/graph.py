"""Exporting the composition graph: DOT, Mermaid, JSON, and SVG/PNG through Graphviz's `dot`.

Backbones are drawn as clusters holding their tower runs and the components attached to them (with
the layers they landed on); frozen parts are grey, trainable parts green; edges carry tensor names
and shapes. DOT and Mermaid are plain text and need no binary.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import networkx as nx

from composer.backbones.registry import backbone_label
from composer.errors import SpecError
from composer.graph.nodes import Graph
from composer.spec.site import spans

TRAINABLE, FROZEN, DATA = "#d9f2d9", "#e6e6e6", "#ffffff"


def _nodes(graph: Graph, trainable: set[str]) -> dict[str, dict[str, Any]]:
    """Drawable nodes: id -> label, cluster (backbone or None), trainable, shape."""
    out: dict[str, dict[str, Any]] = {}
    for name in graph.spec.inputs:
        if f"t:{name}" in graph.g and graph.g.out_degree(f"t:{name}"):
            out[f"t:{name}"] = {"label": f"{name}\\n{graph.types.get(name, '')}", "cluster": None,
                                "trainable": None, "shape": "ellipse"}
    for run_id, run in graph.runs.items():
        tower = graph.shape(run.backbone, run.tower)
        label = f"{run.tower}{'' if run.active else ' (pretrained)'}\\n{tower.depth} blocks x {tower.width}"
        out[f"r:{run_id}"] = {"label": label, "cluster": run.backbone, "trainable": run.backbone in trainable,
                              "shape": "box3d"}
    for key, a in graph.attachments.items():
        layers = ",".join(spans([i + 1 for i in a.layers])) if a.layers else a.point
        where = f"blocks {layers} .{a.point}" if a.layers else f".{a.point}"
        out[f"a:{key}"] = {"label": f"{a.name}: {a.kind.name}\\n{a.use} @ {a.tower} {where}", "cluster": a.backbone,
                           "trainable": a.name in trainable, "shape": "component"}
    for out_name, call in graph.calls.items():
        out[f"c:{out_name}"] = {"label": f"{call.component}: {call.kind.name}", "cluster": None,
                                "trainable": call.component in trainable, "shape": "box"}
    if "loss" in graph.g:
        out["loss"] = {"label": "loss", "cluster": None, "trainable": None, "shape": "doubleoctagon"}
    if "predict" in graph.g:
        out["predict"] = {"label": f"predict\\n{graph.predict}", "cluster": None, "trainable": None,
                          "shape": "doubleoctagon"}
    return out


def _edges(graph: Graph) -> list[tuple[str, str, str, bool]]:
    """(from, to, label, dashed): tensors between computing nodes, attachments into their runs."""
    g = graph.g
    edges = []
    for node in g.nodes:
        if node.startswith("a:"):
            for run in g.successors(node):
                edges.append((node, run, "", True))
        if not node.startswith("t:"):
            continue
        name = node[2:]
        sources = list(g.predecessors(node)) or [node]
        for src in sources:
            for dst in g.successors(node):
                label = f"{name} {graph.types.get(name, '')}"
                if dst == "loss":
                    label += f" x{g.edges[node, dst].get('weight', 1)}"
                edges.append((src, dst, label, False))
    return edges


def _grouped(nodes: dict[str, dict[str, Any]]) -> tuple[list[str], dict[str, list[str]]]:
    """Nodes outside any backbone, and the nodes of each backbone's cluster."""
    loose, clusters = [], {}
    for n, attrs in nodes.items():
        if attrs["cluster"]:
            clusters.setdefault(attrs["cluster"], []).append(n)
        else:
            loose.append(n)
    return loose, clusters


def _label(graph: Graph, backbone: str) -> str:
    return backbone_label(graph.spec.backbones[backbone].family, graph.shapes[backbone].request)


def to_dot(graph: Graph, trainable: set[str]) -> str:
    nodes, lines = _nodes(graph, trainable), [f'digraph "{graph.spec.name}" {{', "  rankdir=LR;",
                                              '  node [fontname="Helvetica", fontsize=10, style=filled];',
                                              '  edge [fontname="Helvetica", fontsize=9];']
    ident = {n: f"n{i}" for i, n in enumerate(nodes)}

    def node_line(n: str, attrs: dict) -> str:
        fill = DATA if attrs["trainable"] is None else (TRAINABLE if attrs["trainable"] else FROZEN)
        label = attrs["label"].replace('"', '\\"')
        return f'{ident[n]} [label="{label}", shape={attrs["shape"]}, fillcolor="{fill}"];'

    loose, clusters = _grouped(nodes)
    lines.extend("  " + node_line(n, nodes[n]) for n in loose)
    for i, (backbone, members) in enumerate(clusters.items()):
        lines.append(f"  subgraph cluster_{i} {{")
        lines.append(f'    label="{backbone}: {_label(graph, backbone)}"; style=rounded; color="#888888";')
        lines.extend("    " + node_line(n, nodes[n]) for n in members)
        lines.append("  }")
    for src, dst, label, dashed in _edges(graph):
        if src in ident and dst in ident:
            style = ", style=dashed" if dashed else ""
            lines.append(f'  {ident[src]} -> {ident[dst]} [label="{label}"{style}];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(graph: Graph, trainable: set[str]) -> str:
    nodes = _nodes(graph, trainable)
    ident = {n: f"n{i}" for i, n in enumerate(nodes)}
    lines = ["flowchart LR"]

    def node_line(n: str, attrs: dict) -> str:
        label = attrs["label"].replace("\\n", "<br/>").replace('"', "'")
        cls = "data" if attrs["trainable"] is None else ("trainable" if attrs["trainable"] else "frozen")
        return f'{ident[n]}["{label}"]:::{cls}'

    loose, clusters = _grouped(nodes)
    lines.extend("  " + node_line(n, nodes[n]) for n in loose)
    for backbone, members in clusters.items():
        lines.append(f'  subgraph {backbone}["{backbone}: {_label(graph, backbone)}"]')
        lines.extend("    " + node_line(n, nodes[n]) for n in members)
        lines.append("  end")
    for src, dst, label, dashed in _edges(graph):
        if src in ident and dst in ident:
            arrow = "-.->" if dashed else "-->"
            text = f'|"{label}"|' if label else ""
            lines.append(f"  {ident[src]} {arrow}{text} {ident[dst]}")
    lines += [f"  classDef trainable fill:{TRAINABLE},stroke:#2e7d32;",
              f"  classDef frozen fill:{FROZEN},stroke:#616161;",
              f"  classDef data fill:{DATA},stroke:#9e9e9e;"]
    return "\n".join(lines) + "\n"


def to_json(graph: Graph, trainable: set[str]) -> str:
    g = nx.DiGraph()
    for n, attrs in _nodes(graph, trainable).items():
        g.add_node(n, **{k: (v.replace("\\n", " ") if isinstance(v, str) else v) for k, v in attrs.items()})
    for src, dst, label, dashed in _edges(graph):
        if src in g and dst in g:
            g.add_edge(src, dst, label=label, attachment=dashed)
    return json.dumps(nx.node_link_data(g, edges="edges"), indent=2) + "\n"


def render(dot_source: str, fmt: str) -> bytes:
    """SVG or PNG bytes from DOT source, through Graphviz's `dot` binary."""
    exe = shutil.which("dot")
    if exe is None:
        raise SpecError(f"--format {fmt} needs Graphviz's 'dot' program, which is not installed",
                        hint="install it (Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz), "
                             "or export --format dot / mermaid, which need nothing")
    done = subprocess.run([exe, f"-T{fmt}"], input=dot_source.encode(), capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"dot failed: {done.stderr.decode(errors='replace')}")
    return done.stdout
