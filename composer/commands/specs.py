"""`composer specs`: list the shipped specs (SPEC may be one of their names)."""

from __future__ import annotations

import json

import click

from composer.commands.common import fail_on_spec_errors
from composer.commands.groups import JSON


@click.command(name="specs")
@JSON.but(help="print one JSON list instead of the table")
@fail_on_spec_errors
def specs_command(as_json):
    """List the specs shipped with composer: name, paper, backbones and trainable parameters (built at
    full size on the meta device, as `composer build` does; a few seconds).

    A name works wherever a spec path does: `composer build msta`, `composer run tds-clip ...`, and in
    `extends:`. A file that exists wins over a name. Where a name has both syntaxes (x.yaml and x.comp),
    the name means the YAML file."""
    from composer.compiler.shipped_list import spec_rows, specs_text

    rows = spec_rows()
    click.echo(json.dumps(rows, indent=2) if as_json else specs_text(rows), nl=not as_json)
