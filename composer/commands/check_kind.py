"""`composer check-kind NAME`: the attachment contract on one kind, a plugin's too."""

from __future__ import annotations

import sys

import click

from composer.commands.common import fail_on_spec_errors


@click.command(name="check-kind")
@click.argument("name")
@click.option("--params", default="", metavar="TEXT", help='its parameters in the text syntax, e.g. "dim=4"')
@click.option("--family", "families", multiple=True, help="only this backbone family (repeatable; default: all)")
@fail_on_spec_errors
def check_kind(name, params, families):
    """Run on kind NAME (a plugin's too) the attachment contract composer's own kinds pass (composer/testing.py);
    exit status 1 when it breaks it."""
    from composer.testing import check_kind as contract
    from composer.testing import report_text

    report = contract(name, params, families or None)
    click.echo(report_text(report))
    sys.exit(1 if report.failures else 0)
