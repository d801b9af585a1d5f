"""The uses: how an attached component is wired into a tower, each a record in this one file.

A kind says what it computes; a use says where and how that is wired in (peft keeps `_create_and_replace`
apart from `LoraLayer.forward` the same way). Each use states the points it accepts on a tower (from the
points the tower declares it honours), how it installs what a kind built, and which parameter names it
owns. The grammar (grammar/spec.lark via spec/text_front.py), the IR and the registry read `USES` from here.

At a point with input `i` and output `o` (composer/backbones/blocks.py runs them):
    parallel      o + f(i)
    sequential    f(o)
    prompt        extra tokens: seen by one block's attention (`tokens`), or by the whole tower (`input`)
    tap           records o for the flow
    weight_delta  changes the weights of the linear at the point (a peft tuner; the kind gives its config)

Adding a peft tuner is a kind whose build returns its peft config; adding a use is one record here.
This module imports torch and peft only when a use installs something, so the front end stays light.
"""

from __future__ import annotations

import sys
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Iterator

if TYPE_CHECKING:
    from torch import nn

    from composer.backbones.blocks import PointHooks
    from composer.backbones.tower import Tower


@dataclass(frozen=True)
class Use:
    name: str
    summary: str
    # (tower, at_blocks) -> the points this use accepts there, out of those the tower honours
    points: Callable[["Tower", bool], tuple[str, ...]]
    # per layer (or once for a tower-level point): put what the kind built at a point of `hooks`
    hook: Callable[["PointHooks", str, Any], None] | None = None
    # whole backbone: (backbone module, module paths, what the kind built, adapter name) -> parameter names it owns
    inject: Callable[["nn.Module", list[str], Any, str], set[str]] | None = None
    # (tower, layers, point) -> the module paths a backbone-level use changes
    targets: Callable[["Tower", list[int], str], list[str | None]] | None = None
    finish: Callable[["nn.Module"], None] | None = None  # once every component is installed on a backbone
    exclusive: str = ""  # why two components cannot share a point this way ("" : they can)
    spans_sites: bool = False  # one component may list several sites (they form one installation)
    builds: bool = True  # the kind builds a module per layer (a tap builds nothing)


def _all_but_tokens(tower: "Tower", at_blocks: bool) -> tuple[str, ...]:
    """Every point the tower honours, except `tokens`: it only takes prompts (nothing flows through it)."""
    return tuple(p for p in (tower.points if at_blocks else tower.tower_points) if p != "tokens")


def _prompt_points(tower: "Tower", at_blocks: bool) -> tuple[str, ...]:
    """Deep prompts at blocks[...].tokens; shallow ones at the tower's input, except on a text tower, whose
    attention mask is fixed to its token length (tokens added for the whole tower would not fit it)."""
    if not at_blocks and tower.layout == "text":
        return ()
    wanted = "tokens" if at_blocks else "input"
    return tuple(p for p in (tower.points if at_blocks else tower.tower_points) if p == wanted)


def _linear_points(tower: "Tower", at_blocks: bool) -> tuple[str, ...]:
    """Block points that are one linear module on this tower."""
    if not at_blocks:
        return ()
    return tuple(p for p in tower.points if tower.linear_path(0, p) is not None)


def _tap_points(tower: "Tower", at_blocks: bool) -> tuple[str, ...]:
    """Token streams only: the tower-level `output` is the pooled output (read it in the flow), not the
    [tokens, width] stream a tap's type promises."""
    return tuple(p for p in _all_but_tokens(tower, at_blocks) if at_blocks or p != "output")


def _parallel(hooks: "PointHooks", point: str, module: Any) -> None:
    hooks.parallel[point].append(module)


def _sequential(hooks: "PointHooks", point: str, module: Any) -> None:
    hooks.sequential[point] = module


def _prompt(hooks: "PointHooks", point: str, module: Any) -> None:
    if point == "input" and module.gate is not None:  # blocks apply the gate; the tower input has none
        raise ValueError("gated prompts attach at blocks[...].tokens, where each block attends them through "
                         "its gate; prompts at the tower's input have no gate to apply (drop `gated`)")
    hooks.prompts.append(module)


def _tap(hooks: "PointHooks", point: str, tap: Any) -> None:
    hooks.taps[point].append(tap)  # (tap name, detach)


def _linear_paths(tower: "Tower", layers: list[int], point: str) -> list[str | None]:
    return [tower.linear_path(i, point) for i in layers]


def _inject_peft(backbone: "nn.Module", paths: list[str], config: Any, name: str) -> set[str]:
    """Wrap the linears at `paths` with the peft adapter `name` made from the kind's config; the adapter's
    parameters are the new ones whose path names the adapter (peft's `<tuner>.<adapter>.` layout)."""
    from peft import inject_adapter_in_model  # lazy: PEFT (torch) only for LoRA/DoRA; uses.py is torch-free

    before = {n for n, _ in backbone.named_parameters()}
    with warnings.catch_warnings():  # one peft adapter per component is what we want
        warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute")
        inject_adapter_in_model(replace(config, target_modules=list(paths)), backbone, adapter_name=name)
    return {n for n, _ in backbone.named_parameters() if n not in before and name in n.split(".")}


def _activate_peft(backbone: "nn.Module") -> None:
    """Make every adapter injected into `backbone` active in the layer that holds it: peft activates only
    the adapter injected last, and with one adapter per component each layer must keep its own."""
    from peft.tuners.tuners_utils import BaseTunerLayer  # lazy: PEFT (torch) only for LoRA/DoRA; uses.py is torch-free

    for module in backbone.modules():
        if isinstance(module, BaseTunerLayer):
            names = list(dict.fromkeys(a for attr in module.adapter_layer_names for a in getattr(module, attr)))
            if names:
                module.set_adapter(names)


@contextmanager
def weight_deltas_off(backbone: "nn.Module") -> Iterator[None]:
    """Run `backbone` with the weights it had before any weight delta: every peft layer inside passes its input
    through its base layer alone (a `.pretrained` tower run, which must be the frozen model, adapters and
    deltas alike). peft's own switch is flipped directly: `enable_adapters` would also reset which adapter
    parameters require gradients, undoing a stage's freezing."""
    tuners = sys.modules.get("peft.tuners.tuners_utils")  # never imported: no weight delta was injected
    layers = [] if tuners is None else [m for m in backbone.modules()
                                        if isinstance(m, tuners.BaseTunerLayer) and not m.disable_adapters]
    if any(layer.merged for layer in layers):  # peft would unmerge them in place to switch them off
        raise RuntimeError("a pretrained tower run cannot switch off weight deltas merged into the weights")
    for layer in layers:
        layer._disable_adapters = True
    try:
        yield
    finally:
        for layer in layers:
            layer._disable_adapters = False


USES: dict[str, Use] = {u.name: u for u in (
    Use("parallel", "adds f(input) to the point's output", _all_but_tokens, hook=_parallel),
    Use("sequential", "replaces the point's output by f(output)", _all_but_tokens, hook=_sequential,
        exclusive="the order of two sequential components at one point is ambiguous"),
    Use("prompt", "extra tokens: one block's attention (blocks[...].tokens) or the whole tower (input)",
        _prompt_points, hook=_prompt),
    Use("tap", "records the point's output for the flow", _tap_points, hook=_tap, builds=False),
    Use("weight_delta", "changes the weights of the linear at the point through a peft tuner", _linear_points,
        inject=_inject_peft, targets=_linear_paths, finish=_activate_peft, spans_sites=True,
        exclusive="two weight deltas on one linear would be summed in an order peft does not promise"),
)}
