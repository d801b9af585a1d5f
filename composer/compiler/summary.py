"""What `composer build` reports: nodes, attachments per layer, parameters per part, FLOPs, the plan, and
(given a batch size or a budget) the memory bill of a training step."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from rich.console import Console
from rich.table import Table

from composer.compiler.fingerprint import fingerprint
from composer.compiler.flops import count_flops
from composer.compiler.memory import bill_lines
from composer.compiler.memory_sizes import format_bytes
from composer.spec.site import spans


def _layers(attachment) -> list[int]:
    return [i + 1 for i in attachment.layers]


def parameter_counts(model) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"total": 0, "trainable": 0})
    for name, p in model.named_parameters():
        part = counts[model.parameter_owner(name)]
        part["total"] += p.numel()
        part["trainable"] += p.numel() if p.requires_grad else 0
    return dict(counts)


def report(model, flops: bool = True) -> dict[str, Any]:
    """A JSON-ready description of the built model."""
    graph, spec = model.graph, model.spec
    nodes = []
    for node in graph.order():
        if node.startswith("r:"):
            run = graph.runs[node[2:]]
            for tensor, output in run.outputs.items():
                nodes.append({"tensor": tensor, "call": f"{run.backbone}.{run.tower}" + ("" if run.active else ".pretrained")
                              + (f".{output}" if output else ""), "inputs": list(run.inputs),
                              "type": str(graph.types[tensor]), "kind": "backbone"})
            for tap in run.taps:
                nodes.append({"tensor": tap, "call": f"tap {graph.placements(tap)[0].site.text}",
                              "inputs": list(run.inputs), "type": str(graph.types[tap]), "kind": "tap"})
        else:
            call = graph.calls[node[2:]]
            nodes.append({"tensor": call.out, "call": call.component, "kind": call.kind.name,
                          "inputs": list(call.inputs), "type": str(graph.types[call.out])})
    attachments = [{"component": a.name, "kind": a.kind.name, "site": a.site.text, "use": a.use,
                    "backbone": a.backbone, "tower": a.tower, "point": a.point, "layers": _layers(a)}
                   for a in graph.attachments.values()]
    parts = parameter_counts(model)
    out: dict[str, Any] = {
        "name": spec.name,
        "backbones": {name: {"family": b.family, "size": b.request.size, "tiny": b.request.tiny,
                             "weights": b.request.weights, "frozen": spec.backbones[name].frozen,
                             "towers": {t: {"depth": tw.depth, "width": tw.width} for t, tw in b.towers.items()}}
                      for name, b in model.backbones.items()},
        "nodes": nodes,
        "attachments": attachments,
        "total_params": sum(p["total"] for p in parts.values()),
        "trainable_params": sum(p["trainable"] for p in parts.values()),
        "params_by_part": parts,
        "losses": dict(spec.losses),
        "predict": graph.predict,
        "plan": model.plan.describe(graph),
        "fingerprint": fingerprint(model),
    }
    if flops:
        f = count_flops(model)
        out.update(gflops=round(f.gflops, 3), gmacs=round(f.gmacs, 3),
                   gflops_per_class_set=round(f.per_class_set / 1e9, 3),
                   gflops_by_node={k: round(v / 1e9, 3) for k, v in f.by_node.items()})
    return out


def _millions(n: int) -> str:
    return f"{n / 1e6:,.2f}M" if n >= 10_000 else f"{n:,}"


def render(info: dict[str, Any], console: Console) -> None:
    """The human-readable form of `report`."""
    console.print(f"[bold]{info['name']}[/bold]")
    for name, b in info["backbones"].items():
        towers = ", ".join(f"{t} {v['depth']}x{v['width']}" for t, v in b["towers"].items())
        size = f"tiny({b['size']})" if b["tiny"] else b["size"]
        state = "frozen" if b["frozen"] else "trainable"
        weights = f"weights {b['weights']}" if b["weights"] else "random weights"
        console.print(f"  backbone {name}: {b['family']} {size}, {weights}, "
                      f"{state}; towers {towers}")

    nodes = Table(title="flow", title_justify="left", show_edge=False)
    for col in ("tensor", "computed by", "from", "type"):
        nodes.add_column(col)
    for n in info["nodes"]:
        nodes.add_row(n["tensor"], n["call"] + (f" ({n['kind']})" if n["kind"] not in ("backbone", "tap") else ""),
                      ", ".join(n["inputs"]), n["type"])
    console.print(nodes)
    _render_parts(info, console)
    if "memory" in info:
        _render_memory(info, console)


def _render_parts(info: dict[str, Any], console: Console) -> None:
    """Attachments, parameters per part, compute and the plan."""
    if info["attachments"]:
        at = Table(title="attachments", title_justify="left", show_edge=False)
        for col in ("component", "kind", "use", "where", "layers (1-based)"):
            at.add_column(col)
        for a in info["attachments"]:
            layers = ",".join(spans(a["layers"])) if a["layers"] else "-"
            at.add_row(a["component"], a["kind"], a["use"], f"{a['backbone']}.{a['tower']} {a['point']}", layers)
        console.print(at)

    params = Table(title="parameters", title_justify="left", show_edge=False)
    for col in ("part", "total", "trainable"):
        params.add_column(col, justify="right" if col != "part" else "left")
    for part, c in info["params_by_part"].items():
        params.add_row(part, _millions(c["total"]), _millions(c["trainable"]))
    params.add_row("[bold]all[/bold]", _millions(info["total_params"]), _millions(info["trainable_params"]))
    console.print(params)
    share = 100 * info["trainable_params"] / max(1, info["total_params"])
    console.print(f"trainable: {info['trainable_params']:,} of {info['total_params']:,} ({share:.2f}%)")
    if "gflops" in info:
        console.print(f"compute: {info['gflops']:.2f} GFLOPs per clip ({info['gmacs']:.2f} GMACs)"
                      + (f"; {info['gflops_per_class_set']:.2f} GFLOPs once per class set"
                         if info["gflops_per_class_set"] else ""))
    if info["plan"]:
        console.print("plan:")
        for line in info["plan"]:
            console.print(f"  {line}")


def _render_memory(info: dict[str, Any], console: Console) -> None:
    """The memory bill of a training step, and the largest batch the budget holds."""
    console.print(f"memory of a training step (batch {info['memory']['batch_size']}, "
                  f"{info['memory']['precision']}):", highlight=False)
    for line in bill_lines(info["memory"]):
        console.print(f"  {line}", highlight=False)
    if info["memory_budget"] is None:
        console.print("no memory budget known here: give --memory-budget for the largest batch size that fits")
    elif info["max_batch_size"] is None:
        console.print("the spec has no loss: no training step to size")
    elif info["max_batch_size"] == 0:
        console.print(f"budget {format_bytes(info['memory_budget'])} ({info['memory_budget_source']}): "
                      "not even a batch of 1 fits", highlight=False)
    else:
        console.print(f"budget {format_bytes(info['memory_budget'])} ({info['memory_budget_source']}): "
                      f"largest batch size that fits: {info['max_batch_size']}", highlight=False)
