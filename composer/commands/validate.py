"""`composer validate SPEC`: check only."""

from __future__ import annotations

import click

from composer.commands.common import compile_meta, fail_on_spec_errors, load
from composer.commands.groups import SPEC


@click.command()
@click.argument("spec", metavar="SPEC")
@SPEC
@fail_on_spec_errors
def validate(spec, sets, unsets):
    """Check SPEC (syntax, schema, sites, shapes, graph) without showing the build."""
    from composer.graph.declared import check_spec, needs_build  # declarations only: no torch

    loaded = load(spec, sets, unsets)
    graph = check_spec(loaded)
    if needs_build(graph):  # params only a built tower can check (CoOp's init words), or a plugin's kind
        graph = compile_meta(loaded).graph
    click.echo(f"{spec}: ok ({len(graph.attachments)} attachments, {len(graph.calls)} flow components)")
