"""`composer diff A B`: what changed between two specs, and what it does to the model."""

from __future__ import annotations

import json
import sys

import click
from click.core import ParameterSource

from composer.commands import bill
from composer.commands.common import compile_meta, console, fail_on_spec_errors
from composer.commands.groups import BACKBONE, BILL, JSON, NO_FLOPS, SPEC

DIFF_BILL = BILL.but("--batch-size", help="compare the memory bills of a training step at this batch size (as "
                     "`composer build --batch-size`; default with --memory-budget: each spec's train.batch_size)").but(
    "--precision", help="the training precision the bills assume (default: each spec's train.precision)").but(
    "--memory-budget", help="memory to fit, e.g. 24GiB: also compare the largest batch size that fits")


MODEL_OPTIONS = ("size", "no_flops", "batch_size", "precision", "memory_budget")  # each asks for the built model
MODEL = click.option("--model", "model", is_flag=True, help="also build both on the meta device and compare the "
                     "models: attachments, parameters, GFLOPs (imports torch: seconds); implied by --size, "
                     "--no-flops, --batch-size, --precision and --memory-budget")


def _side(option, letter: str, help: str):
    """--set-a/--unset-a (or -b): a spec option of one side only."""
    flag, name = option.flags[0], option.flags[1]
    return click.option(f"{flag}-{letter}", f"{name}_{letter}", multiple=True, metavar=option.kwargs["metavar"],
                        help=f"{help} of {letter.upper()} only")


@click.command()
@click.argument("spec_a", metavar="A")
@click.argument("spec_b", metavar="B")
@SPEC
@_side(SPEC.options[0], "a", "override a field")
@_side(SPEC.options[1], "a", "remove a key")
@_side(SPEC.options[0], "b", "override a field")
@_side(SPEC.options[1], "b", "remove a key")
@BACKBONE.options[0].but(default="full", show_default=True,
                         help="tiny swaps every backbone for its small random-weight variant (on both sides)")
@NO_FLOPS
@DIFF_BILL
@JSON
@MODEL
@click.option("--exit-code", is_flag=True, help="exit with status 1 when A and B differ (as `git diff --exit-code`)")
@click.pass_context
@fail_on_spec_errors
def diff(ctx, spec_a, spec_b, sets, unsets, sets_a, unsets_a, sets_b, unsets_b, size, no_flops, batch_size,
         precision, memory_budget, as_json, model, exit_code):
    """Show what changed from spec A to spec B, and with --model what the change does to the built model.

    \b
    composer diff msta msta-few-shot --model
    composer diff specs/baselines/clip-adapter.yaml specs/baselines/clip-adapter.yaml \\
        --set-b components.adapter.site="clip.visual.blocks[8-12].mlp" --json

    Both specs are resolved as `composer build` resolves them (a path or a shipped name, `extends`
    merged, defaults filled in); --set/--unset apply to both, then --set-a/--unset-a to A only and
    --set-b/--unset-b to B only. Every changed path is listed with its old and new value and where
    each side set it (file:line:col, in the file that wrote the value: the spec or the one it extends;
    `<--set-b #1>` for an option; "(default)" for a value not written), both checked as `composer
    validate` checks them. With --model both are then built on the meta device: attachments added,
    removed or moved, parameters, GFLOPs per clip, and with --batch-size or --memory-budget the memory
    bill of a training step (as `composer build --json` prints them). Identical specs: "no differences".

    Exit status: 0 (with --exit-code: 0 when identical, 1 when they differ); 2 when a spec does not
    load or fails its checks (the located error of that spec)."""
    from composer.compiler.diff import compare, render

    sides = ((spec_a, "--set-a", sets_a, unsets_a), (spec_b, "--set-b", sets_b, unsets_b))
    if model or any(ctx.get_parameter_source(p) != ParameterSource.DEFAULT for p in MODEL_OPTIONS):
        loaded, infos = _build_both(sides, sets, unsets, size, no_flops, batch_size, precision, memory_budget)
    else:
        loaded, infos = _check_both(sides, sets, unsets), (None, None)
    result = compare(loaded[0], loaded[1], infos[0], infos[1], spec_a, spec_b)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        render(result, console())
    sys.exit(1 if exit_code and not result["identical"] else 0)


def _check_both(sides, sets, unsets) -> tuple:
    """Each side loaded and checked as `composer validate` checks it: (specs, no reports)."""
    from composer.graph.declared import check_spec, needs_build
    from composer.spec.load import load_spec

    loaded = []
    for arg, option, side_sets, side_unsets in sides:
        spec = load_spec(arg, sets, unsets, side=(option, side_sets, side_unsets))
        if needs_build(check_spec(spec)):
            compile_meta(spec)
        loaded.append(spec)
    return loaded


def _build_both(sides, sets, unsets, size: str, no_flops: bool, batch_size, precision, memory_budget) -> tuple:
    """Each side loaded and built as `composer build` builds it: (specs, reports)."""
    from composer.compiler.memory_sizes import default_budget
    from composer.compiler.summary import report
    from composer.spec.load import load_spec

    budget = bill.parse_budget(memory_budget)
    billed = batch_size is not None or budget is not None
    source = "--memory-budget"
    if billed and budget is None:  # one default for both sides: the free memory changes between two readings
        budget, source = default_budget() or (None, None)
    infos, loaded = [], []
    for arg, option, side_sets, side_unsets in sides:
        spec = load_spec(arg, sets, unsets, side=(option, side_sets, side_unsets))
        model = compile_meta(spec, tiny=size == "tiny")
        memory = None
        if billed:  # as `composer build` bills it (--recompute auto)
            memory = bill.memory(model, batch_size, precision, budget, choose=True, source=source)
        info = report(model, flops=not no_flops)
        info.update(memory or {})
        loaded.append(spec)
        infos.append(info)
    return loaded, infos
