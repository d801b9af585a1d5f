"""The attachment contract that every kind attached at a site passes, for composer's own tests and a plugin's.

As timm tests every registered model: a kind x every family and tower x every point and use the kind declares
(inside blocks and on the tower), at tiny size on the CPU. Each combination is either refused by the check
with a SpecError located at the component's own line, or it builds, runs forward and backward, its trainable
parameters receive a gradient, and one step on them changes the output. Never a traceback, never a dead part.

tests/test_contract.py runs it over the whole registry; a plugin's test calls `assert_kind_contract(NAME)`
and `composer check-kind NAME` prints the same verdict (docs/components.md, "Kinds from other packages").
Checks run one spec per combination on the meta device; the accepted combinations of one tower share a few
real builds (components that could not share a point go to different builds).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, NamedTuple

import torch

from composer.backbones.registry import TINY, Request, all_families, get_family
from composer.backbones.shape import BLOCK_POINTS
from composer.compiler.compile import BuildOptions, compile_spec
from composer.components.registry import get_kind
from composer.errors import SpecError
from composer.graph.infer import input_types
from composer.spec.ir import ClassesInput, LabelInput, VideoInput
from composer.spec.load import load_spec
from composer.tensor_types import TType
from composer.uses import USES

VIDEO = {"dinov2": 56}  # pixels a family's tiny video takes (DINOv2's patch is 14); the others take 64
PARTNER = "clip"  # a text-only family is scored against this family's (frozen) visual tower
SOURCE = Path("contract.comp")  # the name the contract's specs are read under (never written)


class Combo(NamedTuple):
    family: str
    tower: str
    kind: str
    at_blocks: bool  # at blocks[1-2] (True) or on the tower itself
    point: str
    use: str


@dataclass
class Report:
    """What the contract found for one kind: accepted and refused placements, and every failure."""

    kind: str
    accepted: list[Combo] = field(default_factory=list)
    refused: dict[Combo, str] = field(default_factory=dict)  # the check's message for each
    failures: list[str] = field(default_factory=list)


@functools.cache
def towers(family: str) -> dict:
    """The towers of `family`'s tiny build on the meta device (built once per family)."""
    f = get_family(family)
    request = Request(size=f.default_size, tiny=True, weights=None, load=False, image_size=64, frames=8,
                      device="meta")
    return f.build(request, None, "bb").towers


def _frames(family: str) -> int:
    visual = towers(family).get("visual")
    return visual.fixed_frames if visual is not None and visual.fixed_frames else 2


def _video_type(family: str):
    size = VIDEO.get(family, 64)
    return TType(("B", _frames(family), 3, size, size))


def _flow(family: str, tower: str) -> tuple[str, str, int]:
    """Backbone lines, flow lines and frame count that take `tower`'s default output to a loss."""
    vis = "bb" if "visual" in towers(family) else "vis"
    lines = [] if vis == "bb" else [f'backbone vis: {PARTNER}(size="{TINY}")']
    vis_family = family if vis == "bb" else PARTNER
    flow = [f"v = {vis}.visual(video)"]
    pooled = "v"
    if len(towers(vis_family)["visual"].outputs[""].type_of(_video_type(vis_family)).shape) == 3:
        flow.append("vp = pool(v)")
        pooled = "vp"
    if tower == "visual":
        flow.append(f"logits = head({pooled})")
    else:
        flow += [f"t = bb.{tower}(class_names)", f"logits = cos({pooled}, t)"]
    return "\n".join(lines), "\n  ".join(flow), _frames(vis_family)


def spec_text(family: str, tower: str, parts: list[tuple[str, str, str, str]], params: Mapping[str, str]) -> str:
    """A spec (text syntax) attaching every (name, kind, site, use) of `parts` to backbone bb; `params` gives
    a kind's parameters as the text syntax writes them ("dim=4"), small widths keeping the builds fast."""
    extra, flow, frames = _flow(family, tower)
    size = VIDEO.get(family if tower == "visual" or "visual" in towers(family) else PARTNER, 64)
    comps = "\n".join(f"component {n}: {k}({params.get(k, '')}) at {site} {use}" for n, k, site, use in parts)
    trains = any(get_kind(k).build is not None for _, k, _, _ in parts)  # taps alone: nothing to train
    if trains:
        flow += "\n  l = ce(logits, label)"
    used = {"pool": "mean(axis=1)", "head": "linear_head" + ("" if trains else " frozen"), "cos": "cosine_logits",
            "ce": "cross_entropy"}
    flow_parts = "\n".join(f"component {n}: {k}" for n, k in used.items() if f"{n}(" in flow)
    return f"""backbone bb: {family}(size="{TINY}")
{comps}
{extra}
{flow_parts}
flow {{
  {flow}
}}
{"losses { l = 1.0 }" if trains else "predict logits"}
set inputs.video = {{kind = "video", frames = {frames}, size = {size}}}
"""


def combinations(kinds: Iterable[str], families: Iterable[str] | None = None) -> list[Combo]:
    """Every (family, tower, kind, at_blocks, point, use) the registry declares for `kinds` (attached kinds)."""
    out = []
    for family in sorted(all_families() if families is None else families):
        for tower in sorted(towers(family)):
            for kind in (get_kind(k) for k in sorted(kinds)):
                for use in kind.uses:
                    for point in dict.fromkeys(kind.points):
                        for at_blocks in (True, False):
                            if at_blocks and point not in BLOCK_POINTS:
                                continue
                            if not at_blocks and point in BLOCK_POINTS and point != "input":
                                continue
                            out.append(Combo(family, tower, kind.name, at_blocks, point, use))
    return out


def site(tower: str, at_blocks: bool, point: str) -> str:
    return f"bb.{tower}.blocks[1-2].{point}" if at_blocks else f"bb.{tower}.{point}"


def _load(text: str):
    return load_spec(SOURCE, text=text)


def refusal(combo: Combo, params: Mapping[str, str]) -> SpecError | None:
    """The check's refusal of one combination on the meta device (None: accepted). A refusal located anywhere
    but the part's own line (line 2), or anything raised but a SpecError, breaks the contract: AssertionError."""
    part = ("part", combo.kind, site(combo.tower, combo.at_blocks, combo.point), combo.use)
    text = spec_text(combo.family, combo.tower, [part], params)
    try:
        compile_spec(_load(text), BuildOptions(device="meta", tiny=True))
    except SpecError as e:
        located = all(p.loc is not None and p.loc.line == 2 for p in e.problems)
        assert located, f"{combo}: refused, but not at the component's line:\n{e}"
        return e
    except Exception as e:  # noqa: BLE001  (a traceback for a spec is the kind's bug: reported as such)
        raise AssertionError(f"{combo}: the check raised {type(e).__name__}: {e}") from e
    return None


def verdict(combo: Combo, params: Mapping[str, str]) -> bool:
    """Whether the check accepts one combination (`refusal`)."""
    return refusal(combo, params) is None


def buckets(accepted: list[Combo]) -> list[list[Combo]]:
    """Spread one tower's accepted combinations over builds so that no two exclusive ones share a point."""
    out: list[list[Combo]] = []
    taken: list[set] = []
    for combo in accepted:
        key = ((combo.at_blocks, combo.point, combo.use)
               if USES[combo.use].exclusive or (not combo.at_blocks and combo.point == "embed") else None)
        cross = get_kind(combo.kind).build_shared is not None  # one spanning kind per build keeps its part alone
        for bucket, keys in zip(out, taken):
            if key not in keys and not (cross and ("shared", combo.kind) in keys):
                break
        else:
            bucket, keys = [], set()
            out.append(bucket)
            taken.append(keys)
        bucket.append(combo)
        if key is not None:
            keys.add(key)
        keys.add(("shared", combo.kind))
    return out


def random_batch(model, clips: int = 2, classes: int = 3) -> dict:
    """A random batch matching the spec's inputs (video in [0, 1]; classes named "action number i")."""
    batch = {}
    for name, t in input_types(model.spec).items():
        inp = model.spec.inputs[name]
        if isinstance(inp, VideoInput):
            batch[name] = torch.rand((clips,) + tuple(t.shape[1:]))
        elif isinstance(inp, LabelInput):
            batch[name] = torch.arange(clips) % classes
        elif isinstance(inp, ClassesInput):
            batch[name] = [f"action number {i}" for i in range(classes)]
    return batch


def train(bucket: list[Combo], params: Mapping[str, str]) -> None:
    """Build one bucket of a tower's accepted combinations at tiny size on the CPU, run forward and backward:
    each part's trainable parameters get a gradient and one step on them changes the output (AssertionError)."""
    family, tower = bucket[0].family, bucket[0].tower
    parts = [(f"p{i}", c.kind, site(tower, c.at_blocks, c.point), c.use) for i, c in enumerate(bucket)]
    spec = _load(spec_text(family, tower, parts, params))
    model = compile_spec(spec, BuildOptions(device="cpu", tiny=True)).train(False)
    batch = random_batch(model)
    out = model(batch, outputs=["loss", "logits"] + [n for n, k, _, _ in parts if k == "tap"])
    out["loss"].backward()
    base = out["logits"].detach()
    named = dict(model.named_parameters())
    for (name, kind, _, _), combo in zip(parts, bucket):
        if get_kind(kind).build is None:  # a tap: what it records has the promised type
            tapped, shape = out[name], model.graph.types[name].shape  # prompt tokens not counted
            assert tapped.ndim == len(shape) and torch.isfinite(tapped).all(), combo
            assert all(d == n for d, n in zip(shape, tapped.shape) if isinstance(d, int)), (combo, shape)
            continue
        own = [p for n, p in named.items() if model.parameter_owner(n) == name and p.requires_grad]
        assert own, f"{combo}: no trainable parameters"
        grads = [p.grad for p in own]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), f"{combo}: no gradient (dead part)"
        saved = [p.detach().clone() for p in own]
        with torch.no_grad():
            for p, g in zip(own, grads):
                if g is not None:
                    p.sub_(g / g.abs().max().clamp_min(1e-12))
            model.clear_cache()
            after = model(batch, outputs=["logits"])["logits"]
            for p, s in zip(own, saved):
                p.copy_(s)
        assert not torch.equal(after, base), f"{combo}: a step on its parameters leaves the output unchanged"


def check_kind(name: str, params: str = "", families: Iterable[str] | None = None) -> Report:
    """Run the contract for kind `name` (a plugin's is imported), with `params` in the text syntax ("dim=4"),
    over `families` (default: every family). Failures are collected, never raised."""
    kind = get_kind(name)
    if not kind.attaches:
        raise SpecError(f"'{name}' is called in the flow; the contract covers kinds attached at a site",
                        expected="a kind listed with `at a site` by `composer kinds`")
    families = None if families is None else [get_family(f).name for f in families]  # unknown: SpecError
    given = {name: params}
    report = Report(name)
    for combo in combinations([name], families):
        try:
            refused = refusal(combo, given)
        except AssertionError as e:
            report.failures.append(str(e))
            continue
        if refused is None:
            report.accepted.append(combo)
        else:
            report.refused[combo] = str(refused)
    towers = dict.fromkeys(c[:2] for c in report.accepted)
    for family, tower in towers:
        for bucket in buckets([c for c in report.accepted if c[:2] == (family, tower)]):
            try:
                train(bucket, given)
            except AssertionError as e:
                report.failures.append(str(e) or f"{bucket}: a training check failed")
            except Exception as e:  # noqa: BLE001  (a traceback while training is the kind's bug)
                report.failures.append(f"{family}.{tower}: {type(e).__name__}: {e}")
    if not report.accepted:
        first = next(iter(report.refused.values()), "")
        report.failures.append(f"{name} attaches nowhere: every placement it declares is refused, the first:\n{first}")
    return report


def report_text(report: Report) -> str:
    """The verdict as `composer check-kind` prints it."""
    towers = sorted({f"{c.family}.{c.tower}" for c in report.accepted})
    head = (f"{report.kind}: {len(report.accepted)} placements accepted on {', '.join(towers) or 'no tower'}, "
            f"{len(report.refused)} refused at the component's line")
    if not report.failures:
        return (f"{head}\ncontract kept: every accepted placement builds at tiny size, a gradient reaches its "
                f"parameters and one step on them changes the output")
    return "\n".join([head, "contract broken:", *report.failures])


def assert_kind_contract(name: str, params: str = "", families: Iterable[str] | None = None) -> Report:
    """check_kind, for a test: AssertionError listing every failure."""
    report = check_kind(name, params, families)
    assert not report.failures, f"{name} breaks the contract:\n" + "\n".join(report.failures)
    return report
