"""An inference module from a composed model: video clips in, class scores out, nothing else inside.

`composer export` (composer/deploy/export.py) turns a ComposedModel into this module before handing it to
an exporter. Three things change, and none of them changes a score:
- tensors that depend only on the class names (a text tower over prompts, class texts, word masks) are
  computed once with the composed model and frozen in as buffers: the exported graph has no tokenizer and
  no text tower, and scores exactly the classes it was made for;
- weight deltas (LoRA, DoRA: peft layers injected by the weight_delta use, composer/uses.py) are merged into
  the backbone's linears with peft's own `merge` and the peft wrappers replaced by their base layers;
- only the nodes the prediction needs run, so losses, their inputs and anything only they read (the
  `pretrained` copies MSTA's consistency losses use) are left out, as are towers nothing runs.

(Not to be confused with composer/viz/graph.py, which exports the composition *graph* as a drawing.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import networkx as nx
import torch
from peft.tuners.tuners_utils import BaseTunerLayer
from torch import nn

from composer.errors import SpecError
from composer.spec.ir import VideoInput


@dataclass(frozen=True)
class Split:
    """The prediction's nodes, split into those run on every clip and those fixed by the class names."""

    video: str  # the spec's video input
    per_clip: tuple[str, ...]  # run/call nodes that depend on the video, in execution order
    constants: tuple[str, ...]  # tensors the per-clip nodes read that do not depend on the video


def split(model) -> Split:
    """Which of the prediction's nodes depend on the video and which tensors they read that do not."""
    graph, spec = model.graph, model.spec
    if graph.predict is None:
        raise SpecError(f"{spec.name} has no prediction: name its [B, C] scores in `predict`")
    video = next((n for n, i in spec.inputs.items() if isinstance(i, VideoInput)), None)
    if video is None:
        raise SpecError(f"{spec.name} has no video input: there is nothing to export a video classifier from")
    downstream = nx.descendants(graph.g, f"t:{video}")
    per_clip = tuple(n for n in model.needed([graph.predict]) if n in downstream)
    if not per_clip:
        raise SpecError(f"{spec.name}: the prediction '{graph.predict}' does not depend on the video; an exported "
                        "model would give every clip the same scores")
    made = {video} | {t for n in per_clip for t in model._produces(n)}
    read = dict.fromkeys(a for n in per_clip for a in model._inputs(n))
    return Split(video, per_clip, tuple(a for a in read if a not in made))


def node_label(model, node: str) -> str:
    """A node as the spec names it: "component 'head' (cosine_logits)" or "tower run clip.text"."""
    if node.startswith("r:"):
        run = model.graph.runs[node[2:]]
        return f"tower run {run.backbone}.{run.tower}{'' if run.active else '.pretrained'}"
    call = model.graph.calls[node[2:]]
    return f"component '{call.component}' ({call.kind.name})"


def check_constants(model, parts: Split, values: dict[str, Any]) -> None:
    """Refuse when a per-clip node reads something that cannot be frozen as a tensor (class names, texts):
    the exported graph would need the text side at inference."""
    for name in parts.constants:
        if not isinstance(values.get(name), torch.Tensor):
            reader = next(n for n in parts.per_clip if name in model._inputs(n))
            raise SpecError(f"cannot export {model.spec.name}: {node_label(model, reader)} reads '{name}' "
                            f"({type(values.get(name)).__name__}, not a tensor) on every clip; an exported graph "
                            "holds no tokenizer or text at inference")


def check_pretrained_runs(model, parts: Split) -> None:
    """Refuse a per-clip `.pretrained` run of a tower that has weight deltas: merged into the weights, the
    deltas could no longer be switched off for it, and the exported model would score silently differently."""
    deltas = {(a.backbone, a.tower) for a in model.graph.attachments.values() if a.use == "weight_delta"}
    for node in parts.per_clip:
        run = model.graph.runs.get(node[2:]) if node.startswith("r:") else None
        if run is not None and not run.active and (run.backbone, run.tower) in deltas:
            raise SpecError(f"cannot export {model.spec.name}: {node_label(model, node)} runs on every clip without "
                            f"the weight deltas of {run.backbone}.{run.tower}, which export merges into its weights; "
                            "an exported graph cannot hold both")


def merge_weight_deltas(model) -> list[str]:
    """Merge every peft layer (LoRA, DoRA) into the linear it wraps, with peft's own `merge`, and put the
    plain linear back in its place. Returns the merged module paths ("backbone.path")."""
    merged = []
    for name, backbone in model.backbones.items():
        layers = [(path, m) for path, m in backbone.named_modules() if isinstance(m, BaseTunerLayer)]
        for path, layer in layers:
            layer.merge(safe_merge=True)  # every active adapter of the layer (composer activates them all)
            parent, _, child = path.rpartition(".")
            setattr(backbone.get_submodule(parent), child, layer.get_base_layer())
            merged.append(f"{name}.{path}")
    return merged


class InferenceModel(nn.Module):
    """[B, T, 3, H, W] clips (float in [0, 1], or uint8 when `uint8`) -> [B, C] class scores.

    Each backbone normalises with its own statistics inside, as in training; the class-name constants are
    buffers. Holds only the backbones, attached components and flow components the per-clip nodes use."""

    def __init__(self, model, parts: Split, constants: dict[str, torch.Tensor], uint8: bool = False) -> None:
        super().__init__()
        self.graph, self.predict, self.video = model.graph, model.graph.predict, parts.video
        self.per_clip, self.uint8 = parts.per_clip, uint8
        self.names = {f"c{i}": name for i, name in enumerate(constants)}  # buffer names are not tensor names
        for key, name in self.names.items():
            self.register_buffer(key, constants[name].detach().clone())
        runs = [self.graph.runs[n[2:]] for n in self.per_clip if n.startswith("r:")]
        towers = {(r.backbone, r.tower) for r in runs}
        attached = {a.name for a in self.graph.attachments.values()
                    if (a.backbone, a.tower) in towers and any(r.active for r in runs
                                                               if (r.backbone, r.tower) == (a.backbone, a.tower))}
        called = {self.graph.calls[n[2:]].component for n in self.per_clip if n.startswith("c:")}
        self.components = nn.ModuleDict({n: m for n, m in model.components.items() if n in attached | called})
        self.backbones = nn.ModuleDict({b: model.backbones[b] for b in dict.fromkeys(r.backbone for r in runs)})
        for name, backbone in self.backbones.items():
            for tower in [t for t in backbone.towers if (name, t) not in towers]:
                backbone.drop_tower(tower)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        if self.uint8:
            video = video.float() / 255.0
        values: dict[str, Any] = {self.video: video}
        values.update({name: getattr(self, key) for key, name in self.names.items()})
        for node in self.per_clip:
            if node.startswith("r:"):
                run = self.graph.runs[node[2:]]
                tower = self.graph.backbones[run.backbone].towers[run.tower]
                outs = tower.run(values[run.inputs[0]], None, run.active)
                values.update({t: outs[o] for t, o in run.outputs.items()})
                values.update({tap: outs[f"tap:{tap}"] for tap in run.taps})
            else:
                call = self.graph.calls[node[2:]]
                values[call.out] = self.components[call.component](*[values[a] for a in call.inputs])
        return values[self.predict]


def inference_model(model, values: dict[str, Any], uint8: bool = False) -> tuple[InferenceModel, list[str]]:
    """The inference module of `model` (changed in place: weight deltas merged, unused towers dropped), with
    the class-name constants taken from `values` (every tensor a forward pass of `model` computed for the
    classes being exported). Returns it and the merged layers."""
    parts = split(model)
    check_constants(model, parts, values)
    check_pretrained_runs(model, parts)
    merged = merge_weight_deltas(model)
    module = InferenceModel(model, parts, {n: values[n] for n in parts.constants}, uint8)
    return module.train(False), merged


def clip_shape(model, batch: int) -> tuple[int, ...]:
    """The shape of `batch` clips as the spec's video input types them: [B, T, 3, H, W], or
    [B, T, window, 3, H, W] for windowed inputs (TDS-CLIP)."""
    return (batch, *model.graph.types[split(model).video].shape[1:])
