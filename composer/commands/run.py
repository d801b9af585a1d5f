"""`composer run SPEC`: train and evaluate on a dataset, or continue a run (--resume RUN_DIR)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from composer.commands.common import NonEmptyPath, console, fail_on_spec_errors
from composer.commands.groups import RUN, SPEC
from composer.commands.options import fill, together, typed
from composer.errors import DataError
from composer.train.preempt import Preempted

RESUME = click.option("--resume", type=NonEmptyPath(exists=True, file_okay=False, path_type=Path), default=None,
                      help="continue an interrupted run from its run directory; everything else (spec, dataset, "
                      "size, seed, every option) comes from its run.json")
OVERRIDE = click.option("--override", "overrides", multiple=True, metavar="OPTION",
                        help="with --resume: let OPTION differ from the run's record (repeatable); recorded in "
                        "run.json. Only epochs, max-steps, eval-every, save-every, progress-every, workers, device, "
                        "log-with and tracking-uri can change")

REQUEUE = click.option("--requeue", is_flag=True,
                       help="when a cluster's signal (SIGUSR1, SIGTERM) stops the run, also ask SLURM to queue the "
                       "job again (scontrol requeue $SLURM_JOB_ID); without it the run still saves and exits 75 "
                       "(docs/data.md: a batch script that resumes)")


def run_options(params: dict):
    """The RunOptions of `composer run` (or of each run of `composer sweep`) from click's parameters."""
    from composer.rundir.run_options import RunOptions  # torch: only for the commands that run

    return fill(RunOptions, params, SPEC, *RUN)


@click.command()
@click.argument("spec", metavar="SPEC", required=False)
@SPEC
@together(*RUN[:6], RESUME, OVERRIDE, REQUEUE, RUN[6])
@click.pass_context
@fail_on_spec_errors
def run(ctx, spec, resume, overrides, requeue, **kw):
    """Train SPEC on a dataset and evaluate it with the paper's protocol.

    \b
    composer run specs/papers/tds-clip.yaml --dataset demo --size tiny --epochs 3
    composer run SPEC --dataset ucf101 --data-root /data/ucf101 --protocol few-shot --shots 8
    composer run --resume runs/tds-clip-20261122-101500
    composer run --resume RUN_DIR --epochs 40 --override epochs
    torchrun --nproc-per-node 4 -m composer.cli run SPEC --dataset kinetics400 --data-root /data/k400
    accelerate launch --num_processes 4 -m composer.cli run SPEC --dataset kinetics400 --data-root /data/k400

    --batch-size is the global batch, split evenly across the processes (it must divide).
    Writes runs/<spec>-<time>/ (spec, run.json, run.log, metrics.jsonl, checkpoints, summary, confusion, bad
    videos, pictures, and README.md: the run's model card) and prints the metrics.

    --resume RUN_DIR needs nothing else. It continues from the last saved state (an epoch's end, or the
    last --save-every step inside an epoch) and ends with the weights an uninterrupted run would have.
    An option given again must equal the recorded one; a different value is refused, unless --override
    names it (only options that do not change the experiment: see --override).

    SIGUSR1 or SIGTERM (a cluster preempting the job) stops the run after the current optimiser step with
    its state saved, and exit status 75; --resume RUN_DIR continues it exactly."""
    from composer.train.run import Run

    if spec is None and resume is None:
        raise click.UsageError("give a SPEC, or --resume RUN_DIR")
    if resume is None and not kw["dataset"]:
        raise click.UsageError("Missing option '--dataset' (give it, or --resume RUN_DIR to continue a run)")
    if overrides and resume is None:
        raise click.UsageError("--override is for --resume: a new run takes every option as given")
    options = run_options(kw)
    changes = []
    if resume is not None:
        options, changes = _resume(ctx, spec, resume, options, overrides)
    job = Run(spec, options, resume, changes=changes)
    try:
        summary = job.fit()
    except Preempted as e:
        _preempted(job, e, requeue)
    if job.main:
        _results(job, summary)
    job.finish()


def _preempted(job, stopped: Exception, requeue: bool) -> None:
    """Say where the saved run is and how it continues, requeue the job if asked, and exit 75."""
    from composer.train.preempt import EXIT_PREEMPTED
    from composer.train.preempt import requeue as requeue_job

    def say(line: str) -> None:
        click.echo(line, err=True)
        job.log.to_file(line)

    if job.main:
        say(f"preempted: {stopped}; the state is saved in {job.dir / 'checkpoints'}")
        say(f"continue with: composer run --resume {job.dir}")
        if requeue:  # last: SLURM signals the job it requeues (requeue_job ignores that from then on)
            say(requeue_job())
    job.finish()
    sys.exit(EXIT_PREEMPTED)


def _results(job, summary: dict) -> None:
    """The metrics on stdout, and in run.log with the rest of the run's output."""
    from composer.train.evaluate import metrics_table

    out = console()
    lines = [metrics_table(summary)]
    if summary["bad_videos"]:
        lines.append(f"{len(summary['bad_videos'])} video(s) could not be decoded and were skipped; "
                     f"listed in {job.dir / 'bad_videos.txt'}")
    lines.append(f"run directory: {job.dir}")
    for line in lines:
        out.print(line)
        job.log.to_file(line)


def _resume(ctx: click.Context, spec, resume: Path, options, overrides) -> tuple:
    """The options of the run in `resume` (run.json), checked against what was typed again."""
    from composer.rundir.resume import read_record, resumed_options
    from composer.version import composer_version

    record = read_record(resume)
    if record.get("composer") != composer_version():
        click.echo(f"note: {resume} was made by composer {record.get('composer')}, this is {composer_version()}; "
                   "its record and checkpoints have the same layout, so it continues", err=True)
    given = {name: getattr(options, name) for name in typed(ctx, SPEC, *RUN)}
    if spec is not None:
        _same_spec(spec, resume, record["options"], given)
    return resumed_options(record, given, list(overrides))


def _same_spec(spec: str, resume: Path, recorded: dict, given: dict) -> None:
    """SPEC given again with --resume must be the spec the run ran (its spec.yaml), options applied."""
    from composer.compiler.compile import tiny_sets  # torch: only on resume with a SPEC
    from composer.spec.load import load_spec
    from composer.spec.printer import to_yaml

    sets = tiny_sets(given.get("sets", recorded.get("sets", [])), given.get("tiny", recorded.get("tiny")))
    dump = lambda s: to_yaml(s.model_dump(mode="json", by_alias=True, exclude_defaults=True))  # noqa: E731
    if dump(load_spec(spec, sets, given.get("unsets", recorded.get("unsets", [])))) != \
            dump(load_spec(str(resume / "spec.yaml"))):
        raise DataError(f"{spec} is not the spec {resume} ran ({resume / 'spec.yaml'}); "
                        "leave SPEC out to resume with the run's own")
