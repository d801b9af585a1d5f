"""`composer build SPEC`: check a spec and show what it builds (no weights needed)."""

from __future__ import annotations

import json
import re

import click

from composer.commands import bill
from composer.commands.common import compile_meta, console, fail_on_spec_errors, load
from composer.commands.groups import BACKBONE, BILL, CHECKPOINT, JSON, MEMORY, NO_FLOPS, SPEC
from composer.spec.limits import MAX_CLASSES

PLAN = MEMORY.without("--cache-features", "--compile").but(
    "--no-plan", help="build without the plan (autograd everywhere, no caching)").but(
    "--recompute", help="which frozen blocks the plan recomputes in the backward pass instead of storing: auto "
    "recomputes only what does not fit the memory budget at the batch size (the fastest plan that fits); all and "
    "none are for comparison")


def _class_count(ctx, param, value: str | None) -> int | None:
    """--classes as build takes it: how many, or the names themselves (counted), as predict and export take them."""
    if value is None:
        return None
    text = value.strip()
    if text.isdecimal():
        count = int(text) if len(text) <= 8 else MAX_CLASSES + 1  # a long digit string is over the limit anyway
    elif re.fullmatch(r"[-+]?[\d.,\s]+([eE][-+]?\d+)?|[-+]?\d+[kKmM]", text):
        raise click.BadParameter(f"{value!r}: give a count as a whole number, or class names")
    else:
        names = [n.strip() for n in text.split(",") if n.strip()]
        if len(set(names)) < len(names):
            raise click.BadParameter("a class name is repeated")
        count = len(names)
    if not 1 <= count <= MAX_CLASSES:
        raise click.BadParameter(f"give 1 to {MAX_CLASSES} classes (a count, or names separated by commas)")
    return count


# the one --classes (class names; predict, export), which build also takes as a count
CLASSES = CHECKPOINT.but("--classes", metavar='N|"A,B,C"', callback=_class_count,
                         help="the classes to build the model for: how many, or their names comma-separated "
                         "(default: the spec's classes.count)").find("--classes")


@click.command()
@click.argument("spec", metavar="SPEC")
@SPEC
@BACKBONE.options[0].but(default="full", show_default=True,
                         help="tiny swaps every backbone for its small random-weight variant")
@CLASSES
@PLAN.options[0]
@PLAN.options[1]
@PLAN.options[2]
@NO_FLOPS
@BILL
@BACKBONE.options[1].but(help="with --size tiny: check that demo weights exist for every backbone (nothing is "
                         "loaded)")
@JSON
@fail_on_spec_errors
def build(spec, sets, unsets, size, class_names, no_plan, recompute, no_recompute, no_flops, batch_size, precision,
          memory_budget, weights, as_json):
    """Check SPEC and show what it builds: every node, where each attachment landed (per layer),
    parameters per part (total and trainable), GFLOPs per clip and the plan.

    With --batch-size or --memory-budget it adds the memory bill of one training step (weights,
    gradients, optimizer state, activations kept for backward, the backward's temporaries, the peak)
    and the largest batch size that fits the budget (--json: the `memory` object and `max_batch_size`).

    Runs on the meta device: no weights are loaded, so full-size models build in seconds, offline."""
    from composer.compiler.summary import render, report

    budget = bill.parse_budget(memory_budget)
    recompute = "none" if no_recompute else recompute
    model = compile_meta(load(spec, sets, unsets), tiny=size == "tiny", plan=not no_plan, classes=class_names,
                         recompute=recompute != "none", weights=weights)
    asked = batch_size is not None or budget is not None
    if asked:  # pricing the choice takes a meta-device bill per candidate block: only when a bill is asked for
        memory = bill.memory(model, batch_size, precision, budget, choose=recompute == "auto")
    info = report(model, flops=not no_flops)
    if asked:
        info.update(memory)
    elif recompute == "auto" and not no_plan:
        info["plan"].append("recomputation: auto, chosen by `composer run` against the device's memory at its "
                            "batch size (shown here as if all were recomputed; --batch-size or --memory-budget "
                            "shows the choice)")
    if as_json:
        click.echo(json.dumps(info, indent=2))
    else:
        render(info, console())
