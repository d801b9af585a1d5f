"""Bottleneck adapter: x -> s * up(act(down(x))), parallel to a point or after it.

Houlsby et al. 2019 ("Parameter-Efficient Transfer Learning for NLP") put it after a sub-layer;
AdaptFormer (Chen et al., NeurIPS 2022, Eq. 2-3) runs it in parallel to the MLP with a scale s = 0.1.
The up-projection starts at zero, so the adapted model starts as the frozen backbone.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from composer.components.registry import Kind, Params, register
from composer.lazy import Lazy


class BottleneckParams(Params):
    dim: int = Field(64, ge=1, description="bottleneck width r")
    scale: float = Field(0.1, description="s, multiplies the adapter's output")
    activation: Literal["relu", "gelu", "quick_gelu"] = "relu"
    dropout: float = Field(0.0, ge=0, lt=1)
    norm: bool = Field(False, description="LayerNorm on the adapter's input")


register(Kind(
    name="bottleneck_adapter",
    summary="down-project, activation, zero-initialised up-project, times a scale; parallel or sequential",
    params=BottleneckParams,
    paper="Houlsby et al., ICML 2019; AdaptFormer (Chen et al., NeurIPS 2022), Eq. 2-3",
    uses=("parallel", "sequential"),
    points=("attn", "mlp", "block", "attn.qkv", "attn.q", "attn.k", "attn.v", "attn.out", "mlp.fc1", "mlp.fc2",
            "input", "output"),
    build=Lazy("composer.components.adapters.bottleneck_module:build"),
    trains=True,
))
