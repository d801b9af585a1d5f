"""What a sweep's variants compute alike: the frozen prefix of each tower run that several variants share.

Two variants can share a tower run's first blocks when they read the same clips (the same video input and
parameter-free calls to the tower, batch size, seed, views and epochs, so the same decoded and augmented
batches, as many of them) at the same precision through the same backbone (family, size, weights,
resolution: compared by what is built, not by the name a spec gives it), and nothing of either is
attached to those blocks: the prefix ends at the first block any attachment changes (an adapter, a weight
delta, a prompt; a tap only records, so it ends nothing) and is empty for a backbone that trains. Computed
once for the group, the prefix is the shared work; the rest is each variant's own.

This is the analysis `composer sweep --dry-run` prints (issue 24's first part); running a group fused is not
built yet. The ratio is of forward FLOPs per clip: the shared prefix runs without autograd in every variant
(it lies before the first trainable block), so the backward passes, which only the variants' own parts
have, are left out of both sides and make the real time ratio closer to 1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from composer.backbones.blocks import PointHooks, run_block
from composer.compiler.flops import count_flops, meta_batch
from composer.spec.ir import VideoInput


@dataclass(frozen=True)
class Stream:
    """A tower run on clips, as far as sharing is concerned: equal streams compute equal untouched blocks."""

    backbone: str  # the built backbone's identity (family, size, weights, tiny, resolution, frames), as JSON
    tower: str
    active: bool  # False: the `.pretrained` run (no attachments, no weight deltas)
    clips: str  # how the tower's input is computed and what decides the batches and their number, as JSON

    @property
    def label(self) -> str:
        return f"{json.loads(self.backbone)['family']}.{self.tower}" + ("" if self.active else ".pretrained")


@dataclass
class VariantRuns:
    name: str
    total: int  # forward FLOPs per clip of the whole variant
    untouched: dict[Stream, int] = field(default_factory=dict)  # leading blocks no attachment changes
    block_flops: dict[Stream, tuple[int, int]] = field(default_factory=dict)  # (embedding, one block) per clip


@dataclass
class Group:
    variants: list[str]
    shared: int  # forward FLOPs per clip computed once for the group
    own: dict[str, int]  # each variant's forward FLOPs per clip beyond the shared ones
    prefixes: dict[str, int]  # "backbone.tower" -> shared blocks

    sequential: int  # the variants' forward FLOPs per clip, summed

    @property
    def ratio(self) -> float:
        """Fused over sequential forward FLOPs."""
        return (self.shared + sum(self.own.values())) / self.sequential if self.sequential else 1.0


def _untouched(graph, run, depth: int) -> int:
    if not graph.spec.backbones[run.backbone].frozen:  # its weights change as it trains, pretrained run or not
        return 0
    if not run.active:  # the pretrained tower: nothing attached runs
        return depth
    starts = [min(a.layers) if a.layers else (depth if a.point == "output" else 0)
              for a in graph.attachments_of(run.backbone, run.tower) if a.use != "tap"]
    return min(starts, default=depth)


def _per_clip_costs(tower, video: torch.Tensor) -> tuple[int, int]:
    """Forward FLOPs of the tower's embedding and of one (plain) block, for one clip, on the meta device."""
    ctx = tower.context(video)
    with sdpa_kernel(SDPBackend.MATH):
        with FlopCounterMode(display=False) as counter:
            x, mask = tower.embed(video, ctx, PointHooks())
        embedding = counter.get_total_flops()
        with FlopCounterMode(display=False) as counter:
            run_block(tower.parts(0), x, None, ctx, mask)
    return embedding, counter.get_total_flops()


MAX_CHAIN = 16  # calls between a video input and a tower's input (a longer chain is not compared)


def _clip_source(model, tensor: str, depth: int = 0) -> dict | None:
    """How a tower's input is computed from the clips, node by node: the video input's spec, and each frozen
    call on the way (its kind and params); None when the input is not the clips' alone (a trainable call, a
    tower's output, the class names)."""
    spec, graph = model.spec, model.graph
    if isinstance(spec.inputs.get(tensor), VideoInput):
        return {"input": spec.inputs[tensor].model_dump(mode="json")}
    producer = graph.producer.get(tensor, "")
    if not producer.startswith("c:") or depth >= MAX_CHAIN:
        return None
    call = graph.calls[producer[2:]]
    module = model.components[call.component] if call.component in model.components else None
    if module is not None and any(True for _ in module.parameters()):
        return None  # frozen weights of its own: drawn per build, so not provably the same in two variants
    sources = [_clip_source(model, i, depth + 1) for i in call.inputs]
    if any(s is None for s in sources):
        return None
    return {"kind": call.kind.name, "params": call.params.model_dump(mode="json"), "inputs": sources}


def variant_runs(name: str, model, settings: dict[str, Any] | None = None) -> VariantRuns:
    """The streams of a variant built on the meta device, with their untouched blocks and costs. `settings`:
    what its run will use where the spec's own may be overridden (batch_size, seed, precision, epochs;
    rundir/resolve.py)."""
    spec, graph = model.spec, model.graph
    train = spec.train
    run_settings = {"batch_size": train.batch_size, "seed": train.seed, "precision": train.precision,
                    "epochs": [s.epochs or train.epochs for s in spec.stages.values()] or [train.epochs],
                    **(settings or {})}
    batch = meta_batch(model, 1)
    out = VariantRuns(name, count_flops(model).per_clip)
    counted = set(model.needed([graph.predict] if graph.predict else list(spec.losses)))  # what the total counts
    for run in graph.runs.values():
        source = _clip_source(model, run.inputs[0])
        if source is None or f"r:{run.id}" not in counted:
            continue  # text runs are computed once per class set, not per clip; others depend on training
        backbone = model.backbones[run.backbone]
        request = backbone.request
        identity = {"family": backbone.family, "size": request.size, "weights": request.weights,
                    "tiny": request.tiny, "image_size": request.image_size, "frames": request.frames,
                    "activation": request.activation}
        clips = {"source": source, "views": train.views.model_dump(mode="json"), **run_settings}
        stream = Stream(json.dumps(identity, sort_keys=True), run.tower, run.active,
                        json.dumps(clips, sort_keys=True, default=str))
        tower = backbone.towers[run.tower]
        out.untouched[stream] = _untouched(graph, run, tower.depth)
        values = dict(batch)
        with torch.no_grad():
            for node in model.needed([run.inputs[0]]):  # the frozen calls from the clips to the tower's input
                values.update(model.run_node(node, values))
        out.block_flops[stream] = _per_clip_costs(tower, values[run.inputs[0]])
    return out


def groups(variants: list[VariantRuns]) -> list[Group]:
    """Variants linked by sharing at least one untouched block of one stream (directly or through each other),
    each group with its shared work; a variant that shares nothing is its own group of one."""
    def share(a: VariantRuns, b: VariantRuns) -> bool:
        return any(a.untouched[s] and b.untouched.get(s, 0) for s in a.untouched)

    remaining, found = list(variants), []
    while remaining:
        members = [remaining.pop(0)]
        for v in members:  # grows while it is walked: the connected component
            linked = [w for w in remaining if share(v, w)]
            members += linked
            remaining = [w for w in remaining if w not in linked]
        prefixes: dict[str, int] = {}
        shared, saved = 0, {v.name: 0 for v in members}
        streams = dict.fromkeys(s for v in members for s in v.block_flops)
        for stream in streams:
            holders = [v for v in members if v.untouched.get(stream, 0)]
            if len(holders) < 2:
                continue
            depth = min(v.untouched[stream] for v in holders)
            embedding, block = holders[0].block_flops[stream]
            shared += embedding + depth * block
            for v in holders:
                saved[v.name] += embedding + depth * block
            label = stream.label
            label += f" #{sum(k.startswith(label) for k in prefixes) + 1}" if label in prefixes else ""
            prefixes[label] = depth
        found.append(Group([v.name for v in members], shared, {v.name: v.total - saved[v.name] for v in members},
                           prefixes, sum(v.total for v in members)))
    return found


def fusion_table(found: list[Group]) -> str:
    """The groups as Markdown: who shares what, and the predicted ratio."""
    lines = ["| group | variants | shared blocks | shared GFLOPs / clip | own GFLOPs / clip | fused / sequential |",
             "|---|---|---|---|---|---|"]
    for i, g in enumerate(found, 1):
        blocks = ", ".join(f"{k} 1-{v}" for k, v in g.prefixes.items()) or "none"
        own = ", ".join(f"{v:.2f}" for v in (o / 1e9 for o in g.own.values()))
        lines.append(f"| {i} | {', '.join(g.variants)} | {blocks} | {g.shared / 1e9:.2f} | {own} | {g.ratio:.2f} |")
    return "\n".join(lines) + "\n"


def analyse(built: list[tuple[str, Any, dict[str, Any] | None]]) -> list[Group]:
    """(variant name, its model built on the meta device, its run's settings) for every variant -> the groups."""
    return groups([variant_runs(*variant) for variant in built])
