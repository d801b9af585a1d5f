"""`composer graph SPEC`: export the composition graph."""

from __future__ import annotations

from pathlib import Path

import click

from composer.commands.common import compile_meta, fail_on_spec_errors, load, written
from composer.commands.groups import FORMAT, OUTPUT, SPEC
from composer.errors import SpecError


@click.command()
@click.argument("spec", metavar="SPEC")
@SPEC
@FORMAT
@OUTPUT
@fail_on_spec_errors
def graph(spec, sets, unsets, fmt, output):
    """Export the composition graph of SPEC: backbones as clusters with their attachments, frozen
    parts grey and trainable parts green, tensor shapes on the edges."""
    from composer.graph.declared import check_spec, declared_trainable, needs_build  # declarations: no torch
    from composer.viz.graph import render, to_dot, to_json, to_mermaid

    loaded = load(spec, sets, unsets)
    checked = check_spec(loaded)
    if needs_build(checked):  # what trains is known once built (as `composer validate` decides)
        model = compile_meta(loaded)
        checked, trainable = model.graph, model.trainable_parts
    else:
        trainable = declared_trainable(checked)
    if fmt in ("svg", "png"):
        data = render(to_dot(checked, trainable), fmt)
        if output is None:
            raise SpecError(f"--format {fmt} writes binary data: give -o FILE")
        written(output, lambda: Path(output).write_bytes(data))
        return
    text = {"dot": to_dot, "mermaid": to_mermaid, "json": to_json}[fmt](checked, trainable)
    if output:
        written(output, lambda: Path(output).write_text(text, encoding="utf-8"))
    else:
        click.echo(text, nl=False)
