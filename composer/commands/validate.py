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
    model = compile_meta(load(spec, sets, unsets))
    click.echo(f"{spec}: ok ({len(model.graph.attachments)} attachments, {len(model.graph.calls)} flow components)")
