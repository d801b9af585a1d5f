"""FTP's integration layer: the processors' outputs concatenated, normalised and projected,
[B, D1] ... [B, Dk] -> [B, out_dim] (Lu et al., Pattern Recognition 2026). The paper does not give its
form; concatenation, LayerNorm, Linear and GELU is the default here.
"""

from __future__ import annotations

from pydantic import Field

from composer.components.registry import Kind, Params, register
from composer.lazy import Lazy
from composer.tensor_types import TType, match


class IntegrationParams(Params):
    out_dim: int = Field(512, ge=1)


def infer(p: IntegrationParams, ins: list[TType]) -> TType:
    b = match(ins[0], ("B", "D0"), what="features #1")
    for i, t in enumerate(ins[1:], 2):
        match(t, ("B", f"D{i}"), {"B": b["B"]}, what=f"features #{i}")
    return TType((b["B"], p.out_dim))


register(Kind(
    name="integration",
    summary="[B, D1], ..., [B, Dk] -> [B, out_dim]: concatenate, LayerNorm, Linear, GELU",
    params=IntegrationParams, inputs=("features...",), infer=infer,
    paper="FTP (Lu et al., Pattern Recognition 2026), fine-tuning stage",
    build=Lazy("composer.components.fusion.integration_module:build"),
    trains=True,
))
