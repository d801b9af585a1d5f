"""`composer sweep SPEC...`: run many variants (--grid, several specs, --seeds) into one results table."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from composer.commands.common import NonEmptyPath, console, fail_on_spec_errors
from composer.commands.groups import OUT, RUN, SPEC, data
from composer.commands.options import fill, together
from composer.errors import DataError
from composer.spec.limits import check_batch

# each run's options: those of `composer run` but its --seed (with --seeds, the sweep's own) and --out
PER_RUN = (data(required=False, unless="--dry-run"), RUN[1], RUN[2].without("--seed"), RUN[3].without("--out"),
           *RUN[4:])
ONE_SEED = RUN[2].find("--seed").but(help="one seed for every run (the same as --seeds S)")
# the options of `composer sweep` that are its own; every other one is passed to each `composer run`
OWN = ("specs", "sets", "unsets", "grids", "seeds", "seed", "out", "shard", "dry_run", "search", "trials", "storage",
       "study", "prune", "objective")


def _passed_through(ctx: click.Context) -> list[str]:
    """The run options typed on the sweep's command line, as arguments for `composer run` (click's defaults
    are left to the run itself)."""
    args = []
    for param in ctx.command.params:
        if param.name in OWN or ctx.get_parameter_source(param.name) in (None, click.core.ParameterSource.DEFAULT):
            continue
        flag, value = max(param.opts, key=len), ctx.params[param.name]
        if isinstance(param, click.Option) and param.is_flag:
            args += [flag] if value else []
        else:
            args += [a for v in (value if param.multiple else [value]) for a in (flag, str(v))]
    return args


# an Optuna search's own options (--search optuna; composer/sweep/search.py), in the order --help lists them
SEARCH_OPTIONS = (
    click.option("--search", type=click.Choice(["optuna"]), default=None,
                 help="let Optuna choose each trial's values (TPE) instead of running a grid: each --grid is then a "
                 "search space, PATH=log(LOW,HIGH), float(LOW,HIGH), int(LOW,HIGH[,log]) or choice(A,B,...)"),
    click.option("--trials", type=click.IntRange(1, 1000), default=None,
                 help="with --search: how many trials the study holds when done, counting every process that shares "
                 "it"),
    click.option("--storage", default=None, metavar="URL",
                 help="with --search: Optuna's storage, e.g. sqlite:///study.db or postgresql://host/db; processes "
                 "given one storage and --study share the study  [default: sqlite:///<--out>/study.db]"),
    click.option("--study", default=None, metavar="NAME",
                 help="with --search: the study's name in the storage  [default: the sweep directory's name]"),
    click.option("--prune", type=click.Choice(["median", "none"]), default="none", show_default=True,
                 help="with --search: stop a trial whose objective after an epoch is below the median of earlier "
                 "trials' at that epoch (Optuna's MedianPruner; the run saves before it stops)"),
    click.option("--objective", default="test top-1", show_default=True, metavar="METRIC",
                 help="with --search: the metric Optuna maximises, as results.md names it (e.g. 'test top-1')"),
)


def search_options(command):
    for option in reversed(SEARCH_OPTIONS):
        command = option(command)
    return command


@click.command()
@click.argument("specs", nargs=-1, required=True, metavar="SPEC...")
@click.option("--grid", "grids", multiple=True, metavar="PATH=V1,V2,...",
              help="a spec path and the values it takes, read like --set values (repeatable: the variants are the "
              "cartesian product, applied to every SPEC); commas inside [...] or {...} do not split")
@SPEC
@click.option("--seeds", default=None, metavar="S1,S2,...",
              help="run each variant once per seed (--seed passed to each run); the table shows mean ± sample "
              "standard deviation and n")
@ONE_SEED
@OUT.but(type=NonEmptyPath(file_okay=False, path_type=Path), default=None, show_default=False,
         help="the sweep directory; give the same one again to resume  [default: sweeps/<spec>-<time>]")
@click.option("--shard", default=None, metavar="I/N",
              help="run only the runs whose index (0-based, in plan order) % N == I, e.g. one job of a SLURM "
              "array: --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT; needs --out (shared by the shards)")
@click.option("--dry-run", is_flag=True, help="build every variant on the meta device and print its costs; no "
              "training, nothing written")
@search_options
@together(*PER_RUN)
@click.pass_context
@fail_on_spec_errors
def sweep(ctx, specs, grids, sets, unsets, seeds, seed, out, shard, dry_run, **kw):
    """Run many variants of a spec, each a `composer run` in its own process, and collect one results table.

    \b
    composer sweep msta --grid components.msta.params.dim=64,128,256 --grid train.lr=1e-3,3e-4 \\
        --dataset ucf101 --data-root /data/ucf101 --out sweeps/msta-dim-lr
    composer sweep specs/papers/ablations/temporal-prompts-*.yaml --dataset demo --size tiny --seeds 0,1,2
    composer sweep specs/papers/ablations/msta-*.yaml --dry-run      # the cost table, nothing trained
    composer sweep clip-lora --search optuna --trials 20 --prune median --grid 'train.lr=log(1e-5,1e-2)' \\
        --grid 'components.lora_visual.params.r=choice(4,8,16)' --dataset demo --size tiny --out sweeps/lora

    Every option of `composer run` is passed to every run. Each variant's spec is built first (a bad --grid
    key or value, or two variants that are the same spec, stop the sweep before anything runs). The sweep
    directory holds sweep.json, results.md and .csv (rewritten after every run), variants/<run>.json,
    runs/<run>/ and logs/<run>.log. A failed run is recorded and the sweep goes on. The same command with
    the same --out skips finished runs and reruns the others; another command there is refused. With
    --search optuna, Optuna's study chooses the trials (docs/sweeps.md).

    Exit status: 0 when every run (of this shard) finished, 1 when any failed, 2 for a mistake in the arguments."""
    from composer.sweep import plan as sw

    seeds = _seeds(seed, seeds)
    how = {k: kw.pop(k) for k in ("search", "trials", "storage", "study", "prune", "objective")}
    if how["search"] is not None or how["trials"] is not None:
        return _search(ctx, list(specs), grids, list(sets), list(unsets), seeds, out, shard, dry_run, how, kw)
    planned = _or_exit(_plan, ctx, sw, list(specs), grids, list(sets), list(unsets), seeds, out, shard, dry_run, kw)
    if planned is None:
        return
    _run(ctx, sw, planned, shard, list(sets), list(unsets), kw["size"] == "tiny")


def _seeds(seed: int | None, seeds: str | None) -> str | None:
    """--seed S is --seeds S: every variant runs once, with that seed."""
    if seed is not None and seeds is not None:
        raise click.UsageError("give --seed (one seed) or --seeds (a list), not both")
    return str(seed) if seed is not None else seeds


def _or_exit(step, *args):
    """A step of the sweep's set-up; its SweepError becomes one line and exit status 2."""
    from composer.sweep.directory import SweepError

    try:
        return step(*args)
    except SweepError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)


def _run(ctx, sw, planned: tuple, shard: str | None, sets: list[str], unsets: list[str], tiny: bool) -> None:
    """Run this shard's jobs, print the results table, exit 1 when any run failed."""
    folder, identity, jobs, which, seed_list = planned
    mine = sw.shard(jobs, which)
    click.echo(f"sweep directory: {folder} ({len(jobs)} runs" + (f", {len(mine)} in shard {shard}" if which else "")
               + "; the same command with --out " + str(folder) + " resumes it)")
    from composer.sweep.jobs import run_sweep

    made = run_sweep(folder, identity, jobs, mine, sets, unsets, _passed_through(ctx), tiny,
                        seed_list is not None and len(seed_list) > 1, click.echo)
    click.echo((folder / "results.md").read_text(encoding="utf-8"), nl=False)
    click.echo(f"results: {folder / 'results.md'}, {folder / 'results.csv'}")
    sys.exit(1 if any(r["status"] == "failed" for r in made) else 0)


def _plan(ctx, sw, specs: list[str], grids, sets: list[str], unsets: list[str], seeds, out, shard, dry_run: bool,
          kw: dict):
    """Every check before anything runs, then the sweep directory opened: (folder, identity, jobs, shard,
    seeds); None after a dry run (the cost table printed). A mistake raises sw.SweepError."""
    from composer.rundir.run_options import RunOptions, check_run_options
    from composer.sweep.directory import open_dir

    grid = [sw.parse_grid(g) for g in grids]
    seed_list = sw.parse_seeds(seeds) if seeds is not None else None
    which = sw.parse_shard(shard) if shard is not None else None
    if which is not None and out is None:
        raise sw.SweepError("--shard needs --out: every shard writes into the same sweep directory")
    if not dry_run and not kw["dataset"]:
        raise sw.SweepError("Missing option '--dataset' (every run needs one; --dry-run does not)")
    sw.check_count(specs, grid, seed_list)  # before any variant is enumerated, --dry-run included
    options = fill(RunOptions, dict(kw, sets=sets, unsets=unsets), SPEC, *PER_RUN)
    check_run_options(options)
    typed = [n for n in kw if ctx.get_parameter_source(n) not in (None, click.core.ParameterSource.DEFAULT)]
    sw.check_grid(grid, sets, typed + (["seeds"] if seed_list else []))
    if not dry_run and kw["dataset"] != "demo":  # every run would stop on a dataset it cannot index: say so
        from composer.data.datasets import load_dataset  # once, before any build (the demo is generated)

        load_dataset(kw["dataset"], kw["data_root"], kw["split"], kw["skip_missing"])
    tiny = kw["size"] == "tiny"
    variants = sw.plan(specs, grid, sets, unsets, tiny)
    jobs = sw.jobs(variants, seed_list)
    if dry_run:
        _dry_run(sw, variants, sets, unsets, tiny, options)
        return None
    folder = out or sw.default_dir(specs)
    identity = sw.identity(specs, grid, sets, unsets, seed_list, kw, jobs)
    open_dir(folder, identity)
    return folder, identity, jobs, which, seed_list


def _dry_run(sw, variants, sets, unsets, tiny: bool, options) -> None:
    """Print the cost table of every variant: parameters, GFLOPs, and the memory of one training step at the
    batch size and precision a run would use (composer/rundir/resolve.py: `--batch-size`, else the spec's)."""
    from rich.progress import track

    from composer.compiler.precision import resolve_precision
    from composer.rundir.resolve import resolve

    rows = []
    for variant in track(variants, description="building", transient=True, console=console(stderr=True)):
        spec = sw.load_variant(variant, sets, unsets, tiny)
        settled = resolve(spec, options)
        precision, batch = resolve_precision(settled.precision), settled.batch
        too_big = check_batch(spec, batch, "--batch-size")
        if too_big:
            raise DataError(too_big)
        rows.append(sw.measure(variant, sets, unsets, tiny, memory=(batch, precision)))
    click.echo(sw.cost_table(variants, rows), nl=False)
    click.echo("peak memory: one training step, every frozen block that can be recomputed recomputed (the least "
               "a run needs; `composer build SPEC --batch-size N` shows the plan a run chooses)")
    if len(variants) > 1:
        from composer.compiler.fusion import fusion_table

        click.echo("\nshared frozen work (the same clips through the same backbone, blocks before any attachment; "
                   "forward FLOPs per clip; the variants still run one by one):")
        click.echo(fusion_table(sw.fusion_groups(variants, sets, unsets, tiny, options)), nl=False)


def _search(ctx, specs: list[str], grids, sets: list[str], unsets: list[str], seeds, out, shard, dry_run: bool,
            how: dict, kw: dict) -> None:
    """--search optuna: check everything, open the study (refused before any trial when it cannot be), run
    trials until the study holds --trials; exit 1 when any of this process's trials failed."""
    from composer.sweep import search as se

    opened = _or_exit(_open_search, specs, grids, sets, unsets, seeds, out, shard, dry_run, how, kw)
    if opened is None:
        return
    dims, folder, identity, storage, study = opened
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the running trial, tell it failed, then go
    click.echo(f"sweep directory: {folder}; Optuna study {study.study_name!r} in {se.shown(storage)} ({how['trials']} trials; "
               "start more processes with the same --storage and --study to share it)")
    made = se.run_search(folder, specs[0], dims, how["trials"], study, how["objective"], how["prune"], sets, unsets,
                         _passed_through(ctx), kw["size"] == "tiny", identity, click.echo)
    click.echo((folder / "results.md").read_text(encoding="utf-8"), nl=False)
    sys.exit(1 if any(r["status"] == "failed" for r in made) else 0)


def _open_search(specs: list[str], grids, sets: list[str], unsets: list[str], seeds, out, shard, dry_run: bool,
                 how: dict, kw: dict):
    """(dimensions, folder, identity, storage, study), or None after a dry run (the space printed)."""
    from composer.sweep import search as se
    from composer.sweep.directory import open_dir
    from composer.sweep.plan import default_dir

    dims = _check_search(specs, grids, seeds, shard, dry_run, how, kw)
    se.check_space(specs[0], dims, sets, unsets, kw["size"] == "tiny")
    if dry_run:
        click.echo("search space:\n" + "".join(f"  {d.text()}\n" for d in dims) + "every edge builds; nothing run")
        return None
    folder = out or default_dir(specs)
    identity = _search_identity(specs[0], dims, sets, unsets, how, kw)
    open_dir(folder, identity)
    storage = how["storage"] or f"sqlite:///{folder.resolve() / 'study.db'}"
    return dims, folder, identity, storage, se.open_study(storage, how["study"] or folder.name, how["prune"], identity)


def _check_search(specs: list[str], grids, seeds, shard, dry_run: bool, how: dict, kw: dict) -> list:
    from composer.rundir.run_options import RunOptions, check_run_options
    from composer.sweep import search as se
    from composer.sweep.directory import SweepError

    if how["trials"] is None or not grids:
        raise SweepError("--search optuna needs --trials N and at least one --grid PATH=SPACE")
    for name, given in (("--seeds", seeds), ("--shard", shard)):
        if given is not None:
            raise SweepError(f"{name} is not used with --search: processes share trials through --storage (a "
                             "seed goes in with --set train.seed=N or a --grid)")
    if len(specs) != 1:
        raise SweepError("--search takes one SPEC")
    if not dry_run and not kw["dataset"]:
        raise SweepError("Missing option '--dataset' (every trial needs one; --dry-run does not)")
    se.check_objective(how["objective"], how["prune"])
    dims = [se.parse_space(g) for g in grids]
    if len({d.path for d in dims}) != len(dims):
        raise SweepError("a --grid PATH is searched twice")
    check_run_options(fill(RunOptions, dict(kw, sets=[], unsets=[]), SPEC, *PER_RUN))
    return dims


def _search_identity(spec: str, dims: list, sets: list[str], unsets: list[str], how: dict, kw: dict) -> dict:
    """What makes two processes one search (sweep.json and the study keep it); --trials, --storage and --study
    may differ (a study can be extended, and machines reach one database by other URLs)."""
    import json

    from composer.sweep.plan import NOT_IDENTITY, PLAN_VERSION

    out = {"version": PLAN_VERSION, "search": "optuna", "spec": spec, "space": [d.text() for d in dims],
           "sets": sets, "unsets": unsets, "objective": how["objective"], "prune": how["prune"],
           "options": {k: v for k, v in sorted(kw.items()) if k not in NOT_IDENTITY}}
    return json.loads(json.dumps(out, default=str))
