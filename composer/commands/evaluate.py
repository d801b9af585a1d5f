"""`composer eval SPEC`: evaluate a checkpoint on a dataset's test split."""

from __future__ import annotations

import click

from composer.commands.common import NonEmptyPath, console, fail_on_spec_errors
from composer.commands.groups import BACKBONE, CHECKPOINT, COMPUTE, DATA, OUT, PROTOCOL, SPEC, VIEWS
from composer.commands.options import fill

EVAL_CHECKPOINT = CHECKPOINT.options[0].but(
    required=True, type=NonEmptyPath(exists=True),
    help="a checkpoint of a run of SPEC: a trainable-only file (e.g. runs/.../checkpoints/best.safetensors), a "
    "checkpoint directory (runs/.../checkpoints/step-N) or a run's checkpoints folder (its latest); verified "
    "first; its seed and size are used")
EVAL_OUT = OUT.but(default=None, show_default=False, help="where the eval directory goes (default: evals/ in the "
                   "checkpoint's run directory, else ./evals)")


@click.command(name="eval")
@click.argument("spec", metavar="SPEC")
@SPEC
@DATA
@EVAL_CHECKPOINT
@PROTOCOL
@VIEWS
@BACKBONE
@COMPUTE
@EVAL_OUT
@fail_on_spec_errors
def evaluate_command(spec, checkpoint, **kw):
    """Evaluate SPEC with a checkpoint on a dataset's test split (multi-view, as in the spec's train.views).

    \b
    composer eval SPEC --checkpoint runs/RUN/checkpoints/best.safetensors --dataset ucf101 --data-root /data/ucf101

    Writes OUT/<spec>-<time>/summary.json (spec, checkpoint and its SHA-256, dataset, protocol, views, seed,
    size, metrics, per-class accuracy, every video's top-5) and prints the metrics and the directory.
    Test videos that cannot be decoded are scored as wrong (the "failed" column)."""
    from composer.train.evaluate import EvalOptions, evaluate_checkpoint, metrics_table

    options = fill(EvalOptions, kw, SPEC, DATA, PROTOCOL, VIEWS, BACKBONE, COMPUTE, EVAL_OUT)
    summary, folder = evaluate_checkpoint(spec, checkpoint, options)
    console().print(metrics_table(summary))
    if summary["bad_videos"]:
        console().print(f"{len(summary['bad_videos'])} test video(s) could not be decoded and were scored as wrong; "
                        f"listed in {folder / 'summary.json'}")
    console().print(f"eval directory: {folder}", highlight=False, soft_wrap=True)
