"""`composer data check` and `composer data prepare`: look at a dataset, or transcode it, before a long run."""

from __future__ import annotations

import os
import sys

import click

from composer.commands.common import WORKERS, Finite, console, fail_on_spec_errors, load
from composer.commands.groups import DATA, OUT, SPEC
from composer.errors import DataError


@click.group()
def data() -> None:
    """Inspect and prepare datasets before a long run."""


@data.command(name="check")
@DATA
@click.option("--frames", type=click.IntRange(min=1), default=None,
              help="flag videos with fewer frames than this (the T a spec samples)")
@click.option("--spec", "spec_path", default=None, metavar="SPEC",
              help="take --frames from this spec's video input (with --set applied)")
@SPEC
@click.option("--decode/--no-decode", default=True, show_default=True,
              help="decode the first, middle and last frame of every video (--no-decode: only open them, "
              "as `composer run` does before training)")
@fail_on_spec_errors
def data_check(dataset, data_root, split, skip_missing, short_videos, frames, spec_path, sets, unsets, decode):
    """Parse a dataset's split files and look at every video; list what is wrong.

    \b
    composer data check --dataset list --data-root /data/mine --spec specs/papers/tds-clip.yaml

    Reports, in file order and once each, what `composer run` reports on the same dataset (it goes through
    the same code): index problems (file:line: reason), videos that cannot be decoded, and videos shorter
    than the frames sampled (with --frames or --spec). Exit status 0 when nothing is wrong, 1 when
    something is, 2 for a mistake in the arguments."""
    from rich.progress import Progress

    from composer.data.check import check_dataset

    if spec_path is not None:
        frames = _spec_frames(spec_path, sets, unsets, frames)
    with Progress(console=console(stderr=True), transient=True) as bars:
        def advance_factory(total: int):
            task = bars.add_task("checking videos", total=total)
            return lambda: bars.advance(task)

        report = check_dataset(dataset, data_root, split, decode, frames, short_videos, advance_factory,
                               workers=min(4, os.cpu_count() or 1), say=lambda line: click.echo(line, err=True))
    if frames is None:
        report_note = "(short videos not checked: give --frames N or --spec SPEC)"
        click.echo(report.text() + "\n" + report_note)
    else:
        click.echo(report.text())
    sys.exit(0 if report.ok else 1)


def _spec_frames(spec_path: str, sets, unsets, frames: int | None) -> int:
    """The frames the spec's video input samples (--frames, when given too, must agree)."""
    video = load(spec_path, sets, unsets).video_input()
    if video is None:
        raise DataError(f"{spec_path} has no video input to take the frame count from; give --frames N")
    if frames is not None and frames != video.frames:
        raise DataError(f"--frames {frames} contradicts {spec_path}, which samples {video.frames}; give one")
    return video.frames


@data.command(name="prepare")
@DATA.options[1].but(required=True)
@OUT.but(required=True, default=None, show_default=False,
         help="the folder of the copy (created; point --data-root at it afterwards)")
@click.option("--short-side", type=click.IntRange(min=16), default=256, show_default=True,
              help="shorter side in pixels (256 or 320 as most papers read; smaller videos are not upscaled)")
@click.option("--keyframe-every", type=click.IntRange(min=1), default=8, show_default=True,
              help="frames between keyframes: a sampled frame costs at most this many decoded frames")
@click.option("--fps", type=Finite(min=0, min_open=True), default=None,
              help="constant frame rate of the copy (default: the source's)")
@click.option("--crf", type=click.IntRange(0, 51), default=18, show_default=True,
              help="libx264 quality: lower is closer to the source and larger")
@click.option("--preset", default="fast", show_default=True,
              type=click.Choice(["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"]))
@click.option("--jobs", type=WORKERS, default=0, help="videos transcoded at once (default: one per "
              "core; FFmpeg's threads share the cores)")
@DATA.options[0].but(required=False, default=None, help="also check that the copy indexes like the source with "
                     "this dataset's parser (same videos, labels and classes)")
@DATA.options[2].but(help="the split checked with --dataset")
@fail_on_spec_errors
def data_prepare(data_root, out, short_side, keyframe_every, fps, crf, preset, jobs, dataset, split):
    """Transcode a dataset once into a seek-friendly copy: shorter side 256 (or 320), a keyframe every few
    frames, constant frame rate, H.264 through FFmpeg, no audio.

    \b
    composer data prepare --data-root /data/ucf101 --out /fast/ucf101-256
    composer run SPEC --dataset ucf101 --data-root /fast/ucf101-256

    Every video keeps its relative path and name and every other file (split lists, CSV, JSON) is copied as
    it is, so the dataset's parser reads the copy like the original. Runs across the cores; run it again to
    resume (finished videos are skipped; it refuses other settings on the same --out). A video FFmpeg cannot
    decode is reported (one line each, and in OUT/.composer-prepare/failures.txt) and left out; the rest
    completes. A file with a video's name in the copy is always complete. Exit status 0: all prepared;
    1: failures listed; 2: a mistake in the arguments (e.g. an --out that cannot be written)."""
    from composer.data.datasets import load_dataset
    from composer.data.prepare import PrepareOptions

    if dataset is not None:
        load_dataset(dataset, data_root, split, skip_missing=True, strict=False)  # a wrong root stops here
    options = PrepareOptions(short_side=short_side, keyframe_every=keyframe_every, fps=fps, crf=crf,
                             preset=preset, jobs=jobs)
    report = _transcode(data_root, out, options)
    click.echo(report.text())
    same = dataset is None or report.stop or _same_index(dataset, data_root, out, split)
    sys.exit(0 if report.ok and same else 1)


def _same_index(dataset: str, data_root: str, out: str, split: int) -> bool:
    """Whether the copy indexes like the source with the dataset's parser (said either way)."""
    from composer.data.prepare import compare_indexes

    differences = compare_indexes(dataset, data_root, out, split)
    click.echo(f"the copy indexes like the source with the {dataset} parser" if not differences else
               f"the copy does not index like the source ({dataset} parser):\n  " + "\n  ".join(differences))
    return not differences


def _transcode(data_root: str, out: str, options):
    """prepare_dataset with a progress bar on stderr."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from composer.data.prepare import prepare_dataset

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console(stderr=True), transient=True) as bars:
        def advance_factory(total: int):
            task = bars.add_task("transcoding videos", total=total)
            return lambda: bars.advance(task)

        return prepare_dataset(data_root, out, options, advance_factory)
