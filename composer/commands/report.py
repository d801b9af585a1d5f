"""`composer report SPEC...`: parameter and FLOP counts against the papers' figures."""

from __future__ import annotations

import click

from composer.commands.common import fail_on_spec_errors, written
from composer.commands.groups import OUTPUT


@click.command()
@click.argument("specs", nargs=-1, required=True, metavar="SPEC...")
@OUTPUT.but(default=None, help="a Markdown file whose table (between its report markers) is rewritten, or created; "
            "e.g. -o docs/reproduction.md (default: print the table only)")
@fail_on_spec_errors
def report(specs, output):
    """Count trainable and total parameters and GFLOPs per clip of each SPEC at full size (meta device),
    compare with the figures its paper reports (the spec's `reported`), and print the table; with -o,
    also write it into that file."""
    from rich.progress import track

    from composer.compiler import report as rep

    rows = [rep.measure(path) for path in track(specs, description="measuring", transient=True)]
    if output is None:
        click.echo(rep.table(rows), nl=False)
        return
    written(output, lambda: click.echo(rep.write(rows, output), nl=False))
    click.echo(f"written to {output}", err=True)
