"""`composer schema`: the JSON Schema of a YAML spec, for editors (composer/editor, docs/editors.md)."""

from __future__ import annotations

from pathlib import Path

import click

from composer.commands.common import fail_on_spec_errors, written
from composer.commands.groups import OUTPUT


@click.command()
@OUTPUT
@fail_on_spec_errors
def schema(output):
    """Write the JSON Schema (draft 2020-12) of a YAML spec, from the IR and the registries, for editors.
    composer/editor/spec.schema.json in the package is this schema (docs/editors.md)."""
    from composer.editor.schema import dumps, generate

    text = dumps(generate())
    if output:
        written(output, lambda: Path(output).write_text(text, encoding="utf-8"))
    else:
        click.echo(text, nl=False)
