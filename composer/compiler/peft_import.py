"""A LoRA/DoRA component that starts from a PEFT adapter folder (`weights: peft:DIR`).

PEFT itself reads the folder into the library's model structure (compiler/peft_format.py says how the
library's modules map to ours), and the component's layers take its tensors instead of B = 0. The folder is
user input: everything that would make the start differ from the folder's own model is refused in one line
(a ValueError, which the compiler reports at the component): another base, LoRA for DoRA, another rank or
alpha, settings that change the maths (rsLoRA scaling, biases, saved modules), tensors the file lacks, a
module of ours it does not change, or one it changes that no component starting from it takes.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import torch

from composer.backbones.peft_layout import base_name
from composer.compiler.peft_format import CONFIG, WEIGHTS, Delta, layout_of, paired, placed_in, weight_deltas
from composer.components.adapters.lora import LoraParams


def _resolved(config: Any, module: str) -> tuple[int, float]:
    """A module's rank and alpha in a PEFT config: its rank_pattern / alpha_pattern entry, else the default (the
    pattern is a regex on the end of the module's name, as PEFT matches it)."""
    def pick(pattern: dict, default):
        for key, value in (pattern or {}).items():
            try:
                if re.match(rf"(.*\.)?({key})$", module):
                    return value
            except re.error as e:
                raise ValueError(f"the PEFT adapter's pattern {key!r} is not a regular expression ({e})") from None
        return default
    return pick(config.rank_pattern, config.r), pick(config.alpha_pattern, config.lora_alpha)


def _natural(name: str) -> list[tuple]:
    """blocks.2 before blocks.10."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in name.split(".")]


def starts_from(graph, component: str) -> Path | None:
    """The PEFT folder a weight-delta component starts from (`weights: peft:DIR`), if any, resolved."""
    placements = graph.placements(component)
    if not placements or not isinstance(placements[0].params, LoraParams) or placements[0].params.weights is None:
        return None
    return Path(placements[0].params.weights.removeprefix("peft:")).expanduser().resolve()


def _config(folder: Path) -> Any:
    from peft import LoraConfig  # lazy: PEFT only for a LoRA/DoRA started from a PEFT folder

    if not (folder / CONFIG).is_file() or not (folder / WEIGHTS).is_file():
        raise ValueError(f"{folder} is not a PEFT adapter folder (it needs {CONFIG} and {WEIGHTS})")
    try:
        config = LoraConfig.from_pretrained(str(folder))
    except Exception as e:  # a file PEFT cannot read: JSON, an unknown peft_type, fields of another version
        raise ValueError(f"{folder / CONFIG} is not a PEFT LoRA config ({type(e).__name__}: "
                         f"{str(e).strip()[:200]})") from None
    if not isinstance(config, LoraConfig):
        raise ValueError(f"{folder / CONFIG} is a {type(config).__name__}, not LoRA or DoRA")
    return config


def _same_settings(config: Any, placed: list[Delta], component: str, base: str) -> None:
    """The folder's base, kind, maths, ranks and alphas are the component's, or one line says which is not."""
    if config.base_model_name_or_path != base:
        raise ValueError(f"the PEFT adapter is for {config.base_model_name_or_path!r}, this backbone is {base!r}")
    kind = "DoRA" if placed[0].config.use_dora else "LoRA"
    if bool(config.use_dora) != placed[0].config.use_dora:
        raise ValueError(f"the PEFT adapter is {'DoRA' if config.use_dora else 'LoRA'}, component '{component}' is {kind}")
    for setting, off in (("use_rslora", False), ("lora_bias", False), ("bias", "none"), ("modules_to_save", None),
                         ("task_type", None)):
        if getattr(config, setting, off) not in (off, None, [], ""):
            raise ValueError(f"the PEFT adapter sets {setting}={getattr(config, setting)!r}, which composer's "
                             f"{kind} does not have")
    for d in placed:
        theirs = _resolved(config, d.library_module)
        if theirs != (d.config.r, d.config.lora_alpha):
            alpha = f"{theirs[1]:g}" if isinstance(theirs[1], (int, float)) else repr(theirs[1])
            raise ValueError(f"{d.library_module}: the PEFT adapter has rank {theirs[0]} and alpha {alpha}, "
                             f"component '{component}' rank {d.config.r} and alpha {d.config.lora_alpha:g}")


def _load(library: torch.nn.Module, folder: Path, layout_library: str) -> Any:
    """PEFT's own reading of the folder; a tensor the file lacks (PEFT would start it fresh) is refused."""
    from peft import PeftModel  # lazy: PEFT only for a LoRA/DoRA started from a PEFT folder

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            loaded = PeftModel.from_pretrained(library, str(folder))
        except Exception as e:  # a damaged safetensors file, shapes of another model: one line, not a traceback
            first = next((line for line in str(e).splitlines() if line.strip()), type(e).__name__)
            raise ValueError(f"PEFT cannot load {folder} into {layout_library}'s model: {first.strip()[:300]}") from None
    missing = [str(w.message) for w in caught if "missing adapter keys" in str(w.message)]
    if missing:
        raise ValueError(f"{folder / WEIGHTS} lacks tensors PEFT needs ({missing[0][:200]})")
    return loaded


def read_adapter(spec, graph, component: str, folder: Path) -> int:
    """Start `component`'s LoRA/DoRA from the PEFT folder; returns the number of tensors copied (none on the meta
    device, where the folder is only checked)."""
    from peft.tuners.tuners_utils import BaseTunerLayer  # lazy: PEFT only for a LoRA/DoRA started from a PEFT folder

    config = _config(folder)
    backbones = list(dict.fromkeys(p.backbone for p in graph.placements(component)))
    if len(backbones) > 1:
        raise ValueError(f"component '{component}' sits on {len(backbones)} backbones; a PEFT adapter folder holds "
                         "one backbone's (give each backbone its own component)")
    deltas = weight_deltas(spec, graph)
    backbone = graph.backbones[backbones[0]]
    layout = layout_of(backbone.family)
    if layout is None:
        raise ValueError(f"{backbone.family} has no library model PEFT wraps; its adapters cannot be read")
    ours = [d for d in deltas.get(backbones[0], []) if d.component == component]
    placed = placed_in(ours, layout)
    _same_settings(config, placed, component, base_name(layout, backbone.request, backbone.label))
    # the library's structure in uninitialised memory (no random init, no base weights: only the adapter is read)
    library = layout.model(backbone, "meta").to_empty(device="cpu")
    loaded = _load(library, folder, layout.library)
    prefix = "base_model.model."
    targets = {n.removeprefix(prefix) for n, m in loaded.named_modules()
               if isinstance(m, BaseTunerLayer) and n.startswith(prefix) and not n.endswith(".base_layer.out_proj")}
    starting_here = {c for c in spec.components if starts_from(graph, c) == folder}
    claimed = {layout.module(d.path)[0] for d in deltas.get(backbones[0], []) if d.component in starting_here}
    missing = sorted({d.library_module for d in placed} - targets, key=_natural)
    if missing:
        raise ValueError(f"the PEFT adapter does not change {missing[0]}, where component '{component}' sits")
    extra = sorted(targets - claimed, key=_natural)
    if extra:
        raise ValueError(f"the PEFT adapter also changes {len(extra)} module(s) that no component starting from it "
                         f"covers: {', '.join(extra[:3])}{', ...' if len(extra) > 3 else ''}")
    return _copy_into(backbone, placed, dict(loaded.named_parameters()))


def _copy_into(backbone: torch.nn.Module, placed: list[Delta], theirs: dict[str, torch.Tensor]) -> int:
    """Each of our layers' LoRA/DoRA tensors from the PEFT model's; the number copied."""
    copied = 0
    with torch.no_grad():
        for d, what, param, name in paired(backbone, placed):
            source = theirs.get(name)
            if source is None or tuple(source.shape) != tuple(param.shape):
                raise ValueError(f"the PEFT adapter holds no {tuple(param.shape)} tensor for {d.library_module} ({what})")
            if not torch.isfinite(source).all():
                raise ValueError(f"the PEFT adapter's {d.library_module} {what} holds NaN or infinity")
            if not param.is_meta:  # a structure-only build checks the folder and copies nothing
                param.copy_(source)
                copied += 1
    return copied
