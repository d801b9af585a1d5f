"""`composer fmt SPEC`: convert between YAML and the text syntax."""

from __future__ import annotations

from pathlib import Path

import click

from composer.commands.common import fail_on_spec_errors, written
from composer.commands.groups import OUTPUT


@click.command()
@click.argument("spec", metavar="SPEC")
@click.option("--to", "to", type=click.Choice(["yaml", "text"]), required=True, help="the syntax to write")
@click.option("--resolved", is_flag=True, help="write the spec with everything it extends merged in")
@OUTPUT
@fail_on_spec_errors
def fmt(spec, to, resolved, output):
    """Convert SPEC between YAML and the text syntax, losslessly (extends, overrides, deletions,
    comments and the spelling of numbers are kept as written; --resolved drops comments)."""
    from composer.spec.document import Document
    from composer.spec.load import read_document, resolve_document, validate
    from composer.spec.printer import write

    doc = resolve_document(spec) if resolved else read_document(spec)
    if resolved:
        data = validate(doc).model_dump(mode="json", by_alias=True, exclude_defaults=True)
        doc = Document(data, doc.where, doc.file)
    text = write(doc, to)
    if output:
        written(output, lambda: Path(output).write_text(text, encoding="utf-8"))
    else:
        click.echo(text, nl=False)
