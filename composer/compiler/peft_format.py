"""LoRA and DoRA in PEFT's adapter format: written for the library's own model, and read back into a spec.

A composed model holds its weight deltas as PEFT layers injected into composer's backbone modules, one PEFT
adapter per component (composer/uses.py). PEFT's format (adapter_config.json + adapter_model.safetensors)
names the *library's* modules instead (timm's DINOv2, open_clip's CLIP, transformers' VideoMAE), so each backbone's deltas are
written as one adapter folder against that model: PEFT itself wraps the library model (built on the meta
device, no weights), our tensors are assigned to its layers by the family's layout
(backbones/peft_layout.py), and PEFT's own state-dict function names the keys. Components that differ in
rank or alpha share the folder through PEFT's `rank_pattern` / `alpha_pattern`.

open_clip keeps q/k/v as nn.MultiheadAttention's `in_proj_weight`; PEFT's layer for that module puts one
LoRA of one rank on in_proj *and* out_proj. A delta on only one of them is written with the other's
B = 0 (an exact no-op), and PEFT has no DoRA for that layer, so DoRA on CLIP's attention is refused.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import torch
from safetensors.torch import save

from composer.backbones.peft_layout import LINEAR, OUT_PROJ, PeftLayout, base_name
from composer.backbones.registry import get_family
from composer.compiler.fingerprint import identity
from composer.errors import DataError
from composer.files import atomic_write_bytes

CONFIG, WEIGHTS = "adapter_config.json", "adapter_model.safetensors"
ADAPTER = "default"  # the adapter name PEFT loads a folder as


@dataclass(frozen=True)
class Delta:
    """One weight delta on one linear: the component, its composer module path and its peft config."""

    component: str
    path: str  # in the backbone module
    config: Any  # peft LoraConfig
    library_module: str = ""
    part: str = LINEAR


@dataclass
class Written:
    folders: dict[str, Path]  # backbone -> adapter folder
    components: dict[str, list[str]]  # backbone -> the components in its folder
    left_out: list[str]  # trainable parts PEFT has no format for, each with why


def layout_of(family: str) -> PeftLayout | None:
    lazy = get_family(family).peft
    return None if lazy is None else lazy.resolve()


def weight_deltas(spec, graph) -> dict[str, list[Delta]]:
    """backbone -> its weight deltas, in the spec's component order."""
    out: dict[str, list[Delta]] = {}
    for name in spec.components:
        placements = graph.placements(name)
        if not placements or placements[0].use != "weight_delta":
            continue
        config = placements[0].kind.build(placements[0].params, None)
        for a in placements:
            out.setdefault(a.backbone, []).extend(Delta(name, path, config) for path in a.linear_paths)
    return out


def placed_in(deltas: list[Delta], layout: PeftLayout) -> list[Delta]:
    """Each delta with the library module it sits in (and which part of it)."""
    return [replace(d, library_module=m, part=p) for d in deltas for m, p in [layout.module(d.path)]]


def _placed(deltas: list[Delta], layout: PeftLayout, backbone: str) -> list[Delta]:
    """placed_in, with one line for what PEFT cannot hold."""
    placed = placed_in(deltas, layout)
    kinds = {d.config.use_dora for d in placed}
    if len(kinds) > 1:
        raise DataError(f"backbone '{backbone}' carries both LoRA and DoRA; a PEFT adapter is one or the other "
                        f"(components {', '.join(dict.fromkeys(d.component for d in placed))})")
    if len({d.config.lora_dropout for d in placed}) > 1:
        raise DataError(f"backbone '{backbone}': the weight deltas differ in dropout; a PEFT adapter has one")
    for d in placed:
        if d.part != LINEAR and d.config.use_dora:
            raise DataError(f"component '{d.component}' is DoRA on {layout.library}'s nn.MultiheadAttention "
                            f"({d.library_module}); PEFT's layer for that module has no DoRA")
    by_module: dict[str, set[tuple[int, float]]] = {}
    for d in placed:
        by_module.setdefault(d.library_module, set()).add((d.config.r, d.config.lora_alpha))
    for module, configs in by_module.items():
        if len(configs) > 1:
            raise DataError(f"{module}: PEFT gives its q/k/v and output projections one rank and alpha, but "
                            f"the components there differ ({sorted(configs)})")
    return placed


def _config(placed: list[Delta]) -> Any:
    from peft import LoraConfig  # lazy: PEFT only for LoRA/DoRA work

    ranks = Counter((d.config.r, d.config.lora_alpha) for d in placed)
    r, alpha = ranks.most_common(1)[0][0]
    # whole names: PEFT matches a list by suffix and patterns by their end, and open_clip's text blocks
    # (transformer.resblocks.N) are a suffix of its visual ones (visual.transformer.resblocks.N)
    modules = sorted({d.library_module for d in placed})
    anchored = "^(?:" + "|".join(re.escape(m) for m in modules) + ")$"
    rank_pattern = {"^" + re.escape(d.library_module): d.config.r for d in placed if d.config.r != r}
    alpha_pattern = {"^" + re.escape(d.library_module): d.config.lora_alpha for d in placed
                     if d.config.lora_alpha != alpha}
    first = placed[0].config
    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=first.lora_dropout, use_dora=first.use_dora, bias="none",
                      target_modules=anchored, rank_pattern=rank_pattern, alpha_pattern=alpha_pattern)


def peft_name(d: Delta, rest: str) -> str:
    """The PeftModel parameter that holds `rest` (lora_A.default.weight, ...) of the delta's layer."""
    inner = f"{d.library_module}.base_layer.out_proj" if d.part == OUT_PROJ else d.library_module
    return f"base_model.model.{inner}.{rest}"


def paired(backbone: torch.nn.Module, placed: list[Delta]) -> Iterator[tuple[Delta, str, torch.nn.Parameter, str]]:
    """(delta, what it is, our parameter, PEFT's name for it) for every LoRA/DoRA tensor of the deltas: ours are
    `<path>.<lora_A|lora_B|lora_magnitude_vector>.<component>.weight`, PEFT's the same under the library module
    with its adapter name."""
    ours = dict(backbone.named_parameters())
    for d in placed:
        prefix, tag = f"{d.path}.", f".{d.component}."
        for name, param in ours.items():
            if name.startswith(prefix) and tag in f".{name[len(prefix):]}":
                rest = f".{name[len(prefix):]}".replace(tag, f".{ADAPTER}.")[1:]
                yield d, rest.split(".")[0], param, peft_name(d, rest)


def adapter_tensors(backbone: torch.nn.Module, placed: list[Delta], peft_model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every LoRA/DoRA parameter of `peft_model` (the library model wrapped by PEFT on the meta device), from
    our backbone's layers; the half of an nn.MultiheadAttention no component changes gets zeros."""
    tensors = {theirs: param.detach().to("cpu", copy=True).contiguous()
               for _, _, param, theirs in paired(backbone, placed)}
    wanted = {n: p for n, p in peft_model.named_parameters() if ".lora_" in n}
    unknown = sorted(set(tensors) - set(wanted))
    if unknown:
        raise DataError(f"PEFT's model has no parameter {unknown[0]} (the family's layout does not match peft "
                        f"{_peft_version()})")
    for name, param in wanted.items():
        if name not in tensors:
            if ".lora_B." not in name and ".lora_A." not in name:
                raise DataError(f"nothing of ours fills PEFT's {name}")
            tensors[name] = torch.zeros(param.shape, dtype=param.dtype)
        elif tuple(tensors[name].shape) != tuple(param.shape):
            raise DataError(f"{name}: ours is {tuple(tensors[name].shape)}, PEFT's {tuple(param.shape)}")
    return tensors


def config_json(config: Any) -> bytes:
    """adapter_config.json as PEFT's `save_pretrained` writes it (sets as lists, sorted keys), for inference."""
    fields = {k: sorted(v) if isinstance(v, set) else v for k, v in config.to_dict().items()}
    return (json.dumps({**fields, "inference_mode": True}, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _peft_version() -> str:
    import peft  # lazy: PEFT only for LoRA/DoRA work

    return peft.__version__


def write_adapters(model, out: Path) -> Written:
    """One PEFT adapter folder per backbone that carries LoRA/DoRA (out/<backbone>/)."""
    from peft import get_peft_model, get_peft_model_state_dict  # lazy: PEFT only for LoRA/DoRA work

    deltas = weight_deltas(model.spec, model.graph)
    folders: dict[str, Path] = {}
    components: dict[str, list[str]] = {}
    left_out = [f"{name} ({model.spec.components[name].kind})" for name in sorted(model.trainable_parts)
                if name in model.spec.components and not any(d.component == name for ds in deltas.values() for d in ds)]
    left_out += [f"{name} (unfrozen backbone weights)" for name in sorted(model.trainable_parts) if name in model.backbones]
    for name, ds in deltas.items():
        backbone = model.backbones[name]
        layout = layout_of(backbone.family)
        if layout is None:
            left_out += [f"{c} (on {backbone.family}, which has no library model PEFT wraps)"
                         for c in dict.fromkeys(d.component for d in ds)]
            continue
        placed = _placed(ds, layout, name)
        library = layout.model(backbone, "meta")
        peft_model = get_peft_model(library, _config(placed))
        config = peft_model.peft_config[ADAPTER]  # PEFT sets the base from the model, which names none
        config.base_model_name_or_path = base_name(layout, backbone.request, backbone.label)
        tensors = adapter_tensors(backbone, placed, peft_model)
        peft_model.load_state_dict(tensors, strict=False, assign=True)
        state = {k: v.contiguous() for k, v in get_peft_model_state_dict(peft_model, save_embedding_layers=False).items()}
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        components[name] = list(dict.fromkeys(d.component for d in placed))
        meta = {"format": "pt", **identity(model), "backbone": name, "components": json.dumps(components[name])}
        atomic_write_bytes(folder / WEIGHTS, save(state, metadata=meta))
        atomic_write_bytes(folder / CONFIG, config_json(config))
        folders[name] = folder
    if not folders:
        raise DataError(f"{model.spec.name} has no LoRA or DoRA on a backbone PEFT's format covers (timm's DINOv2, "
                        f"open_clip's CLIP, transformers' VideoMAE); nothing to write" + (f"; trainable: {', '.join(left_out)}" if left_out else ""))
    return Written(folders, components, left_out)


def base_state(backbone: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The backbone's own weights without its deltas: PEFT's layers hold the original linear as `base_layer`."""
    return {k.replace(".base_layer.", "."): v for k, v in backbone.state_dict().items() if ".lora_" not in k}


def library_with_adapter(model, name: str, folder: Path, merge: bool = False) -> torch.nn.Module:
    """The library's model with the backbone's base weights, and the adapter folder loaded by PEFT itself
    (`PeftModel.from_pretrained`); merged into the weights with `merge_and_unload` when asked."""
    from peft import PeftModel  # lazy: PEFT only for LoRA/DoRA work

    backbone = model.backbones[name]
    layout = layout_of(backbone.family)
    library = layout.model(backbone, "cpu")
    missing, unexpected = library.load_state_dict(layout.library_state(base_state(backbone)), strict=False)
    if unexpected:
        raise DataError(f"the library model has no {unexpected[0]} (backbone '{name}')")
    unused = tuple(m for t, modules in backbone.tower_modules.items() if t not in backbone.towers for m in modules)
    lacking = [k for k in missing if k.split(".")[0] not in unused]  # a tower the spec never uses was dropped
    if lacking:
        raise DataError(f"backbone '{name}': the library model's {lacking[0]} has no weights here")
    peft_model = PeftModel.from_pretrained(library, str(folder)).train(False)
    return peft_model.merge_and_unload() if merge else peft_model


def largest_difference(model, written: Written, clips: int = 2, seed: int = 0) -> float:
    """Run every tower of each written backbone twice on the same inputs, composer's (weight deltas only) and
    the library's with the adapter (as loaded, and merged): the largest absolute difference of the outputs."""
    g = torch.Generator().manual_seed(seed)
    worst = 0.0
    for name, folder in written.folders.items():
        backbone = model.backbones[name]
        layout = layout_of(backbone.family)
        for merge in (False, True):
            library = library_with_adapter(model, name, folder, merge)
            for tower_name, tower in backbone.towers.items():
                if tower.input_dtype == "str":
                    inp = theirs_in = ["a video of a person jumping.", "a red square moving left."]
                else:
                    size, frames = backbone.request.image_size, backbone.request.frames
                    inp = torch.rand(clips, frames, 3, size, size, generator=g)
                    theirs_in = backbone.normalize(inp.flatten(0, 1)).view(inp.shape)
                with torch.no_grad():
                    ours = tower.run_deltas_only(inp)[""]
                    theirs = layout.forward(library, tower_name, theirs_in)
                difference = float((ours.reshape(theirs.shape) - theirs).abs().max())
                worst = math.inf if math.isnan(difference) else max(worst, difference)  # NaN is no match
    return worst
