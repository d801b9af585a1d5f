"""`composer plot RUN_DIR...`: draw a run's learning curves and confusion matrices (or overlay runs)."""

from __future__ import annotations

from pathlib import Path

import click

from composer.commands.common import NonEmptyPath, fail_on_spec_errors, written
from composer.commands.groups import OUTPUT
from composer.errors import DataError


@click.command()
@click.argument("run_dirs", nargs=-1, required=True, metavar="RUN_DIR...", type=NonEmptyPath(path_type=Path))
@OUTPUT.but(type=NonEmptyPath(dir_okay=False, path_type=Path), default=None,
            help="write one figure with the learning curves of every RUN_DIR overlaid to this file (.png, .svg or "
            ".pdf); default with several runs: overlay.png in the current folder")
@fail_on_spec_errors
def plot(run_dirs, output):
    """Draw the pictures of runs from their metrics.jsonl and confusion.json.

    \b
    composer plot runs/tds-clip-20261122-101500             redraw learning-curves.png and
                                                           confusion-<part>.png in the run directory
    composer plot runs/a runs/b -o compare.png              both runs' curves in one figure

    Curves: training loss per epoch and single-view test top-1 per evaluated epoch, on one epoch
    axis across stages (boundaries dotted). Confusion matrices: multi-view test, normalised per true class."""
    from composer.viz import plots

    for run_dir in run_dirs:
        plots.check_run_dir(run_dir)
    if len(run_dirs) == 1 and output is None:
        run_dir = Path(run_dirs[0])  # a zero-shot run has only its confusion matrices; a run with neither is refused
        curves = plots.has_curves(run_dir) or not (run_dir / "confusion.json").exists()
        for path in plots.draw_run(run_dir, learning_curves=curves):
            click.echo(str(path))
        return
    drawn = [d for d in run_dirs if plots.has_curves(d)]
    for run_dir in run_dirs:  # a zero-shot run trained nothing: it has no curves to overlay
        if run_dir not in drawn:
            click.echo(f"note: {run_dir} has no learning curves (it trained no epoch, e.g. a zero-shot run); "
                       "left out of the overlay", err=True)
    if not drawn:
        raise DataError("none of the runs trained an epoch: there are no learning curves to overlay")
    target = Path("overlay.png") if output is None else output
    written(target, lambda: click.echo(str(plots.overlay(drawn, target))))
