"""`composer diff`: what changed between two specs, and (with --model) what the change does to the built model.

The spec side comes from composer/spec/diff.py (path by path, with where each side set the value). The
model side (built only when asked: it imports torch) compares two `composer build` reports (summary.report, with the memory bill when one was
asked for), so every number here is the one `composer build --json` prints for that spec: attachments
added, removed or moved, parameters (trainable and total, overall and per part), GFLOPs per clip, and
the peak memory of a training step and the largest batch that fits.

The JSON object (`composer diff --json`; docs/language.md, "Comparing specs") is built here and is the
single source of the human output, which `render` draws from it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Column, Table
from rich.text import Text

from composer.spec.diff import diff_specs
from composer.spec.ir import Spec
from composer.spec.site import spans

Report = dict[str, Any]  # summary.report(model), updated with build's memory entries when a bill was asked


def delta(old: float | None, new: float | None) -> dict[str, Any]:
    """{"old", "new", "delta"}; delta is None when either side has no value."""
    if old is None or new is None:
        return {"old": old, "new": new, "delta": None}
    change = new - old
    return {"old": old, "new": new, "delta": round(change, 3) if isinstance(change, float) else change}


def _placements(info: Report) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    """Attachments by (component, backbone, tower): where on that tower each one sits."""
    out: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for a in info["attachments"]:
        out.setdefault((a["component"], a["backbone"], a["tower"]), []).append(
            {"site": a["site"], "kind": a["kind"], "use": a["use"], "point": a["point"], "layers": a["layers"]})
    return out


def attachment_changes(old: Report, new: Report) -> list[dict[str, Any]]:
    """Per component and tower: added, removed, moved (other layers or point) or changed (same place,
    another kind or use). Unchanged attachments are left out."""
    before, after = _placements(old), _placements(new)
    out = []
    for key in [*before, *(k for k in after if k not in before)]:
        o, n = before.get(key), after.get(key)
        if o == n:
            continue
        if o is None or n is None:
            change = "added" if o is None else "removed"
        else:
            place = [(p["point"], p["layers"]) for p in o] != [(p["point"], p["layers"]) for p in n]
            change = "moved" if place else "changed"
        out.append({"component": key[0], "backbone": key[1], "tower": key[2], "change": change, "old": o, "new": n})
    return out


def _parts(old: Report, new: Report) -> dict[str, dict[str, Any]]:
    """Parameter counts of the parts whose counts differ (a part missing on one side counts 0 there)."""
    zero = {"total": 0, "trainable": 0}
    a, b = old["params_by_part"], new["params_by_part"]
    out = {}
    for part in [*a, *(p for p in b if p not in a)]:
        o, n = a.get(part, zero), b.get(part, zero)
        if o != n:
            out[part] = {"trainable": delta(o["trainable"], n["trainable"]), "total": delta(o["total"], n["total"])}
    return out


def model_changes(old: Report, new: Report) -> dict[str, Any]:
    """The `model` object of `composer diff --json`; `changed` says whether any of it differs."""
    out: dict[str, Any] = {
        "attachments": attachment_changes(old, new),
        "trainable_params": delta(old["trainable_params"], new["trainable_params"]),
        "total_params": delta(old["total_params"], new["total_params"]),
        "params_by_part": _parts(old, new),
    }
    if "gflops" in old and "gflops" in new:
        out["gflops"] = delta(old["gflops"], new["gflops"])
        out["gflops_per_class_set"] = delta(old["gflops_per_class_set"], new["gflops_per_class_set"])
    if "memory" in old and "memory" in new:
        out["memory"] = {"old": old["memory"], "new": new["memory"],
                         "peak": delta(old["memory"]["peak"], new["memory"]["peak"]),
                         "max_batch_size": delta(old["max_batch_size"], new["max_batch_size"]),
                         "memory_budget": new["memory_budget"], "memory_budget_source": new["memory_budget_source"]}
    numbers = [v for v in out.values() if isinstance(v, dict) and "delta" in v]
    out["changed"] = bool(out["attachments"] or out["params_by_part"]
                          or any(v["delta"] != 0 for v in numbers)
                          or ("memory" in out and (out["memory"]["peak"]["delta"]
                                                   or out["memory"]["max_batch_size"]["delta"])))
    return out


def compare(a: Spec, b: Spec, a_info: Report | None, b_info: Report | None, a_arg: str,
            b_arg: str) -> dict[str, Any]:
    """The whole `composer diff --json` object: both sides, the changed paths, and the model's changes when
    both were built (`--model`: the reports are given)."""
    changes = [c.as_json() for c in diff_specs(a, b)]
    out = {"a": {"spec": a_arg, "name": a.name, "file": a._file},
           "b": {"spec": b_arg, "name": b.name, "file": b._file},
           "identical": not changes,
           "changes": changes}
    if a_info is not None and b_info is not None:
        out["model"] = model_changes(a_info, b_info)
        out["identical"] = not changes and not out["model"]["changed"]
    return out


# ---------------------------------------------------------------- the human form
def _signed(n: float | None) -> str:
    if n is None:
        return "-"
    if not n:
        return "0"
    return f"{n:+,.2f}" if isinstance(n, float) else f"{n:+,}"


def _value(v: Any) -> str:
    if v is None:
        return "-"
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)


def _file(file: str) -> str:
    """A file under the current folder relative to it (shipped specs are named by absolute paths)."""
    if os.path.isabs(file):
        try:
            return str(Path(file).relative_to(Path.cwd()))
        except ValueError:
            pass
    return file


def _place(at: str | None) -> str:
    """A location (file:line:col) as people read it; None (a default value) as '(default)'."""
    if at is None:
        return "(default)"
    file, line, col = at.rsplit(":", 2)
    return f"{_file(file)}:{line}:{col}"


def _where(change: dict[str, Any], side: str) -> str:
    at = change[f"{side}_at"]
    if change[side] is None:  # this side does not have the path
        return f"deleted at {_place(at)}" if at else "-"
    return _place(at)


def _sites(placements: list[dict[str, Any]] | None, how: bool) -> str:
    """Each placement's site and the layers it landed on; `how`: also its kind and use."""
    if placements is None:
        return "-"
    return "; ".join(f"{p['site']} (layers {','.join(spans(p['layers'])) or '-'})"
                     + (f" {p['kind']} as {p['use']}" if how else "") for p in placements)


def _count_row(table: Table, label: str | Text, d: dict[str, Any]) -> None:
    share = f" ({100 * d['delta'] / d['old']:+.1f}%)" if d["delta"] and d["old"] else ""
    table.add_row(label, f"{d['old']:,}", f"{d['new']:,}", _signed(d["delta"]) + share)


def render(result: dict[str, Any], console: Console) -> None:
    """The human form of `compare`: a table of changed paths, of attachments, of the model's numbers."""
    a, b = result["a"], result["b"]
    console.print(Text.assemble(("A", "bold"), f" {a['name']} ({_file(a['file'])})\n",
                                ("B", "bold"), f" {b['name']} ({_file(b['file'])})"))
    if result["identical"]:
        console.print("no differences")
        return
    if result["changes"]:
        table = Table("path", Column("A", overflow="fold"), Column("B", overflow="fold"), "set in A at",
                      "set in B at", title=f"spec: {len(result['changes'])} changed path(s)", title_justify="left",
                      show_edge=False)
        for c in result["changes"]:
            table.add_row(Text(c["path"]), Text(_value(c["old"])), Text(_value(c["new"])), Text(_where(c, "old")),
                          Text(_where(c, "new")))
        console.print(table)
    else:
        console.print("spec: no changed paths (the same IR), but the built models differ:")
    if "model" in result:
        _render_model(result["model"], console)


def _render_model(model: dict[str, Any], console: Console) -> None:
    """The model part: attachments that changed, then parameters, GFLOPs and memory side by side."""
    if model["attachments"]:
        table = Table("component", "tower", "change", Column("A", overflow="fold"), Column("B", overflow="fold"),
                      title="attachments", title_justify="left", show_edge=False)
        for at in model["attachments"]:
            table.add_row(Text(at["component"]), Text(f"{at['backbone']}.{at['tower']}"), at["change"],
                          Text(_sites(at["old"], at["change"] == "changed")),
                          Text(_sites(at["new"], at["change"] == "changed")))
        console.print(table)
    table = Table("model", Column("A", justify="right"), Column("B", justify="right"),
                  Column("delta", justify="right"), title="model", title_justify="left", show_edge=False)
    _count_row(table, "trainable parameters", model["trainable_params"])
    _count_row(table, "total parameters", model["total_params"])
    for part, counts in model["params_by_part"].items():
        _count_row(table, Text(f"  {part} trainable"), counts["trainable"])
        if counts["total"] != counts["trainable"]:
            _count_row(table, Text(f"  {part} total"), counts["total"])
    if "gflops" in model:
        g = model["gflops"]
        table.add_row("GFLOPs per clip", f"{g['old']:.2f}", f"{g['new']:.2f}", _signed(float(g["delta"])))
    if "memory" in model:
        from composer.compiler.memory_sizes import format_bytes  # lazy: torch (memory_sizes) only for --model

        m = model["memory"]
        steps = [f"batch {m[side]['batch_size']}, {m[side]['precision']}" for side in ("old", "new")]
        label = f"peak memory ({steps[0]})" if steps[0] == steps[1] else f"peak memory ({steps[0]} / {steps[1]})"
        peak = m["peak"]
        sign = "+" if peak["delta"] > 0 else "-" if peak["delta"] < 0 else ""
        table.add_row(label, format_bytes(peak["old"]), format_bytes(peak["new"]),
                      f"{sign}{format_bytes(abs(peak['delta']))}" if peak["delta"] else "0")
        most = m["max_batch_size"]
        if most["old"] is not None or most["new"] is not None:
            table.add_row("largest batch that fits", _value(most["old"]), _value(most["new"]), _signed(most["delta"]))
    console.print(table)
    if not model["changed"]:
        console.print("the built model is the same")
