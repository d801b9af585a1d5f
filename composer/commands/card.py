"""`composer card RUN_DIR...`: write a run's model card (RUN_DIR/README.md)."""

from __future__ import annotations

from pathlib import Path

import click

from composer.commands.common import NonEmptyPath, fail_on_spec_errors


@click.command()
@click.argument("run_dirs", nargs=-1, required=True, metavar="RUN_DIR...", type=NonEmptyPath(path_type=Path))
@click.option("--stdout", "to_stdout", is_flag=True, help="print the card instead of writing RUN_DIR/README.md")
@click.option("--hub", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="lay one run out in DIR for upload to a model hub: README.md (the card), model.safetensors (the "
              "final weights), spec.yaml, config.json and the card's pictures; nothing is uploaded")
@fail_on_spec_errors
def card(run_dirs, to_stdout, hub):
    """Write the model card of runs: RUN_DIR/README.md, in the layout of a Hugging Face model card.

    \b
    composer card runs/tds-clip-20261122-101500

    `composer run` writes the card itself (at the start, after every epoch and at the end); this writes it
    again from the directory's files, e.g. for a run made before cards existed. The card holds the
    results (a model-index in the front matter, the confusion and learning-curve pictures), the
    backbones and their weights, what trains and where it attaches, parameters and GFLOPs per clip, the
    data and protocol, the command that recreates the run and the checkpoints' SHA-256. A run without
    test metrics says it is not trained yet or was interrupted.

    \b
    composer card runs/tds-clip-20261122-101500 --hub upload/tds-clip   # then e.g. `hf upload` the folder"""
    from composer.rundir.card import model_card, write_card

    if hub is not None:
        from composer.rundir.hub import hub_folder

        if len(run_dirs) != 1 or to_stdout:
            raise click.UsageError("--hub lays out one RUN_DIR, without --stdout")
        click.echo(f"{hub}: {', '.join(hub_folder(run_dirs[0], hub))}")
        return

    for run_dir in run_dirs:
        if to_stdout:
            click.echo(model_card(run_dir), nl=False)
        else:
            click.echo(str(write_card(run_dir)))
