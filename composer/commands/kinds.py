"""`composer kinds`: list the component kinds."""

from __future__ import annotations

import click

from composer.commands.common import console


@click.command()
@click.option("--markdown", is_flag=True, help="write the component catalogue (docs/components.md)")
def kinds(markdown):
    """List the component kinds of the registry, with their parameters."""
    from composer.components.catalogue import catalogue_markdown, kinds_table

    if markdown:
        click.echo(catalogue_markdown(), nl=False)
    else:
        console().print(kinds_table())
