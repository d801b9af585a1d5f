"""`composer specs`: one line per shipped spec, with what it reproduces, its backbones and trainable size.

The trainable count is what building the spec on the meta device at full size gives, exactly as `composer
build` counts it. Building imports torch, so the counts of the shipped specs are kept as data
(shipped_trainable.json), each with the digest of the resolved spec it was counted for (composer/spec/digest.py): a spec whose
digest differs (edited in a source checkout) is built again. tests/test_shipped.py holds every count
to the build, so kind or family code that changes a count cannot leave the file behind unnoticed
(`write_trainable()` rewrites it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from composer.backbones.registry import backbone_label
from composer.graph.declared import backbone_requests
from composer.spec.digest import spec_digest
from composer.spec.ir import Spec
from composer.spec.load import load_spec
from composer.spec.shipped import ROOT, SUFFIXES, shipped

TRAINABLE = Path(__file__).with_name("shipped_trainable.json")


def built_trainable(spec: Spec) -> int:
    """Trainable parameters of the spec built on the meta device at full size (imports torch)."""
    # lazy: builds a model (torch) only for a spec whose kept count is stale
    from composer.compiler.compile import BuildOptions, compile_spec
    from composer.compiler.summary import parameter_counts  # lazy: torch, as above

    model = compile_spec(spec, BuildOptions(device="meta"))
    return sum(p["trainable"] for p in parameter_counts(model).values())


def _kept() -> dict[str, dict[str, Any]]:
    return json.loads(TRAINABLE.read_text()) if TRAINABLE.is_file() else {}


def trainable(name: str, spec: Spec, kept: dict[str, dict[str, Any]]) -> int:
    """The kept count where it was counted for this very spec, else the build's."""
    entry = kept.get(name)
    if entry is not None and entry["fingerprint"] == spec_digest(spec):
        return entry["trainable_params"]
    return built_trainable(spec)


def write_trainable() -> None:
    """Count every shipped spec by building it, and keep the counts (run after changing a kind or a family)."""
    rows = {name: {"fingerprint": spec_digest(spec), "trainable_params": built_trainable(spec)}
            for name, spec in ((n, load_spec(p)) for n, p in shipped().items())}
    TRAINABLE.write_text(json.dumps(rows, indent=1, sort_keys=True) + "\n")


def _labels(spec: Spec) -> list[str]:
    """The backbones as `composer build` labels them ("clip ViT-B/16"; "clip tiny(ViT-B/16)")."""
    return [backbone_label(r.family.name, r.request) for r in backbone_requests(spec, "meta", False, False).values()]


def spec_row(name: str, path: Path, kept: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """What `composer specs` says about one shipped spec."""
    spec = load_spec(path)
    other = [s for s in SUFFIXES if s != path.suffix and path.with_suffix(s).is_file()]
    return {
        "name": name,
        "file": str(path.relative_to(ROOT.resolve())),
        "also": [str(path.with_suffix(s).relative_to(ROOT.resolve())) for s in other],
        "paper": spec.paper or (spec.reported.source if spec.reported else None) or spec.description,
        "backbones": _labels(spec),
        "trainable_params": trainable(name, spec, _kept() if kept is None else kept),
    }


def spec_rows() -> list[dict[str, Any]]:
    kept = _kept()
    return [spec_row(name, path, kept) for name, path in shipped().items()]


def _millions(n: int) -> str:
    return f"{n / 1e6:,.2f}M" if n >= 10_000 else f"{n:,}"


def specs_text(rows: list[dict[str, Any]]) -> str:
    """Plain aligned lines, one per spec (easy to grep), and a note on what a name means."""
    cells = [("name", "trainable", "backbones", "file", "paper / description")]
    for r in rows:
        also = "".join(f" (+{Path(a).suffix})" for a in r["also"])
        cells.append((r["name"], _millions(r["trainable_params"]), ", ".join(r["backbones"]), r["file"] + also,
                      r["paper"] or "-"))
    widths = [max(len(row[i]) for row in cells) for i in range(4)]
    lines = ["  ".join([row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].ljust(widths[2]),
                        row[3].ljust(widths[3]), row[4]]) for row in cells]
    note = ("A name works wherever a spec path does (composer build NAME); a file that exists wins. Where a name "
            "has both syntaxes (+.comp), the name means the YAML file.")
    return "\n".join(lines + ["", note]) + "\n"
