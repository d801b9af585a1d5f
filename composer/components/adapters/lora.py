"""LoRA through peft: W' = W + (alpha / r) * B A, with B zero-initialised (Hu et al., ICLR 2022, Eq. 3).

The compiler turns a site into exact module paths and hands them to `peft.inject_adapter_in_model`;
peft does the maths, its own initialisation and the bookkeeping. Each component is its own peft
adapter (named after the component), so several LoRA/DoRA components can sit on one backbone.
"""

from __future__ import annotations

import warnings

from pydantic import Field
from torch import nn

from composer.components.registry import Kind, Params, register

DELTA_POINTS = ("attn.qkv", "attn.q", "attn.k", "attn.v", "attn.out", "mlp.fc1", "mlp.fc2")


class LoraParams(Params):
    r: int = Field(8, ge=1, description="rank")
    alpha: float = Field(16.0, gt=0, description="scaling numerator: the update is (alpha / r) * B A")
    dropout: float = Field(0.0, ge=0, lt=1)


def inject(p: LoraParams, backbone: nn.Module, paths: list[str], name: str, dora: bool = False) -> None:
    """Wrap the linears at `paths` (relative to `backbone`) with a peft adapter called `name`."""
    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(r=p.r, lora_alpha=p.alpha, lora_dropout=p.dropout, target_modules=list(paths),
                        use_dora=dora, bias="none")
    with warnings.catch_warnings():  # one peft adapter per component is what we want
        warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
        inject_adapter_in_model(config, backbone, adapter_name=name)


def activate_all(backbone: nn.Module) -> None:
    """Make every adapter injected into `backbone` active in the layer that holds it.

    peft activates only the adapter injected last; with one adapter per component (lora_visual on the
    visual tower, lora_text on the text tower) each layer must keep its own adapter active."""
    from peft.tuners.lora import LoraLayer

    for module in backbone.modules():
        if isinstance(module, LoraLayer) and module.lora_A:
            module.set_adapter(list(module.lora_A.keys()))


def owns(name: str, param_name: str) -> bool:
    """Whether a backbone parameter belongs to the peft adapter `name`."""
    return param_name.endswith(f".{name}.weight") and (
        ".lora_A." in param_name or ".lora_B." in param_name or ".lora_magnitude_vector." in param_name)


register(Kind(
    name="lora",
    summary="low-rank weight update B A on a linear, through peft (LoraConfig)",
    params=LoraParams, build=lambda p, backbone, paths, name: inject(p, backbone, paths, name),
    paper="LoRA (Hu et al., ICLR 2022), Eq. 3",
    uses=("weight_delta",), points=DELTA_POINTS,
))
