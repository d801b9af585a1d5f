"""Visual prompt tuning: learnable tokens that the attention of a block (deep) or of the whole tower
(shallow) can attend to (Jia et al., ECCV 2022, Eq. 5 shallow and Eq. 6 deep).

Deep prompts attach at `blocks[...].tokens`: one prompt set per block, seen by that block's attention
only and dropped after it (VPT-deep discards them at the next layer too). Shallow prompts attach at the
tower's `input` and travel through every block, dropped before the tower's output.
With `gated: true` (deep prompts only) the prompts are attended separately and added through tanh(gate), gate = 0 at start
(the zero-init attention of LLaMA-Adapter, Zhang et al., ICLR 2024, Eq. 7): the model starts as the
frozen backbone, which plain VPT cannot do.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from composer.components.registry import Kind, Params, SiteInfo, register
from composer.lazy import Lazy


class VisualPromptParams(Params):
    tokens: int = Field(8, ge=1, description="prompt tokens per block (deep) or in all (shallow)")
    init: Literal["uniform", "normal", "zeros"] = Field(
        "uniform", description="uniform(+-sqrt(6 / (3 p^2 + D))) as VPT, normal(0.02), or zeros")
    dropout: float = Field(0.0, ge=0, lt=1)
    gated: bool = Field(False, description="attend prompts separately through a zero-initialised tanh gate "
                                           "(deep prompts only: each block applies its gate)")


def check(p: VisualPromptParams, site: SiteInfo) -> None:
    if site.point == "input" and p.gated:  # blocks apply the gate; the tower input has none (uses.py)
        raise ValueError("gated prompts attach at blocks[...].tokens, where each block attends them through "
                         "its gate; prompts at the tower's input have no gate to apply (drop `gated`)")


register(Kind(
    name="visual_prompts",
    summary="learnable tokens seen by attention: deep (per block, at .tokens) or shallow (at the tower input)",
    params=VisualPromptParams,
    paper="VPT (Jia et al., ECCV 2022), Eq. 5-6; gate: LLaMA-Adapter (Zhang et al., ICLR 2024), Eq. 7",
    uses=("prompt",), points=("tokens", "input"),
    build=Lazy("composer.components.prompts.visual_prompts_module:build"),
    check=check,
    trains=True,
))
