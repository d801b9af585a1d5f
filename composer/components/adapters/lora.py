"""LoRA through peft: W' = W + (alpha / r) * B A, with B zero-initialised (Hu et al., ICLR 2022, Eq. 3).

The kind returns its peft config and nothing else; the weight_delta use (composer/uses.py) turns a site
into exact module paths and injects the config there, as one peft adapter named after the component,
so several LoRA/DoRA components can sit on one backbone. peft does the maths and its initialisation.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from composer.components.registry import Kind, Params, SiteInfo, register

DELTA_POINTS = ("attn.qkv", "attn.q", "attn.k", "attn.v", "attn.out", "mlp.fc1", "mlp.fc2")


class LoraParams(Params):
    r: int = Field(8, ge=1, description="rank")
    alpha: float = Field(16.0, gt=0, description="scaling numerator: the update is (alpha / r) * B A")
    dropout: float = Field(0.0, ge=0, lt=1)
    weights: str | None = Field(None, pattern=r"^peft:.+", max_length=4096,
                                description="start from a PEFT adapter folder (peft:DIR, as `composer export --format "
                                "peft` writes and PEFT's save_pretrained saves) instead of B = 0; refused when its base, "
                                "rank, alpha or target modules differ from this component's (compiler/peft_format.py)")


def config(p: LoraParams, dora: bool = False) -> Any:
    """peft's LoraConfig for these params (target modules are the use's business)."""
    from peft import LoraConfig  # lazy: PEFT (torch) only for a build; declarations stay torch-free

    return LoraConfig(r=p.r, lora_alpha=p.alpha, lora_dropout=p.dropout, use_dora=dora, bias="none")


def build(p: LoraParams, site: SiteInfo) -> Any:
    return config(p)


register(Kind(
    name="lora",
    summary="low-rank weight update B A on a linear, through peft (LoraConfig)",
    params=LoraParams, build=build,
    paper="LoRA (Hu et al., ICLR 2022), Eq. 3",
    uses=("weight_delta",), points=DELTA_POINTS,
    trains=True,
))
