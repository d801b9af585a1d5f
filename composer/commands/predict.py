"""`composer predict SPEC VIDEO...`: classify video files (zero-shot with --classes, or with a checkpoint)."""

from __future__ import annotations

import json
import sys

import click

from composer.commands.common import NonEmptyPath, console, fail_on_spec_errors
from composer.commands.groups import BACKBONE, CHECKPOINT, COMPUTE, JSON, SPEC, VIEWS
from composer.commands.options import fill

PREDICT_COMPUTE = COMPUTE.without("--gpu-decode").but(
    "--batch-size", help="videos per forward pass (default: the spec's train.batch_size)").but(
    "--workers", help="processes decoding videos")


@click.command()
@click.argument("spec", metavar="SPEC")
@click.argument("paths", nargs=-1, required=True, metavar="VIDEO_OR_FOLDER...", type=NonEmptyPath())
@SPEC
@CHECKPOINT
@click.option("--top-k", type=click.IntRange(min=1), default=None,
              help="classes shown per video  [default: 5, or all when there are fewer]")
@VIEWS.but(help="C clips along time x K crops (1 or 3) per video, softmax scores averaged (default: the spec's "
           "train.views, as in `composer eval`)")
@BACKBONE
@PREDICT_COMPUTE
@JSON.but(help='print JSON lines: one object per input, {"path", "top_k": [{"class", "probability"}]} or '
          '{"path", "error"}')
@fail_on_spec_errors
def predict(spec, paths, as_json, **kw):
    """Classify videos: the top-k classes of each with their probabilities.

    \b
    composer predict specs/baselines/clip-zero-shot.yaml clip.mp4 --classes "archery,juggling,surfing"
    composer predict SPEC videos/ --checkpoint runs/.../checkpoints/best.safetensors --json

    A folder stands for every video file inside it (recursively, sorted). Videos are decoded, sampled
    and averaged over views exactly as `composer eval` does. A spec whose classifier is text (CLIP,
    ViCLIP, MSTA, temporal prompts) scores any class names; a linear head scores the classes of its
    checkpoint. A spec with trainable parts needs --checkpoint.

    Exit status: 0 when every video was classified; 2 when any input failed (a missing path, a folder
    without videos, a file that cannot be decoded: each is reported and the others still are
    classified) or for a mistake in the arguments."""
    from composer.deploy.predict import PredictOptions, Predictor, find_videos, read_classes

    options = fill(PredictOptions, kw, SPEC, CHECKPOINT, VIEWS, BACKBONE, PREDICT_COMPUTE, top_k=kw["top_k"],
                   classes=read_classes(kw["class_names"], kw["classes_file"]))
    videos, failed = find_videos(list(paths))
    predictor = Predictor(spec, options)
    err = console(stderr=True)
    for note in predictor.notes:
        err.print(f"note: {note}", highlight=False)
    results = [*_shown(failed, as_json), *_classify(predictor, videos, err, as_json)]
    bad = [r for r in results if r.error is not None]
    ties = predictor.ties()
    if ties:
        err.print(f"warning: {ties}", highlight=False, soft_wrap=True)
    if not as_json:
        console().print(_table(predictor, results))
    for r in bad:
        err.print(f"error: {r.path}: {r.error}", highlight=False, soft_wrap=True)
    sys.exit(2 if bad else 0)


def _shown(results: list, as_json: bool) -> list:
    """`results`, each printed as a JSON line with --json."""
    for r in results if as_json else []:
        click.echo(json.dumps(r.to_json(), ensure_ascii=False))
    return results


def _classify(predictor, videos: list, err, as_json: bool) -> list:
    """Every video's prediction, with a progress bar (and, with --json, each printed as it comes)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    results = []
    with Progress(TextColumn("classifying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err, transient=True, disable=len(videos) < 2) as progress:
        task = progress.add_task("videos", total=len(videos))
        for r in predictor.predict(videos) if videos else []:
            results.append(r)
            progress.advance(task)
            _shown([r], as_json)
    return results


def _table(predictor, results: list):
    from rich.table import Column, Table
    from rich.text import Text

    table = Table(Column("video", overflow="fold"), "class", Column("probability", justify="right"),
                  title=f"top {predictor.top_k} of {len(predictor.classes)} classes, {predictor.clip.clips} "
                  f"clip(s) x {predictor.clip.crops} crop(s)", title_justify="left")
    for r in results:  # Text cells: a path or class name with [brackets] is not rich markup
        if r.error is not None:
            table.add_row(Text(r.path), Text(f"error: {r.error}", style="red"), "", end_section=True)
        for rank, (name, p) in enumerate(r.top):
            table.add_row(Text(r.path if rank == 0 else ""), Text(name), f"{p:.4f}",
                          end_section=rank == len(r.top) - 1)
    return table
