"""`composer sweep SPEC...`: run many variants (--grid, several specs, --seeds) into one results table."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from composer.commands.common import NonEmptyPath, console, fail_on_spec_errors
from composer.commands.groups import OUT, RUN, SPEC, data
from composer.commands.options import fill, together
from composer.errors import DataError
from composer.spec.limits import check_batch

# each run's options: those of `composer run` but its --seed (--seeds here) and --out (the sweep's own)
PER_RUN = (data(required=False, unless="--dry-run"), RUN[1], RUN[2].without("--seed"), RUN[3].without("--out"),
           *RUN[4:])
# the options of `composer sweep` that are its own; every other one is passed to each `composer run`
OWN = ("specs", "sets", "unsets", "grids", "seeds", "out", "shard", "dry_run")


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


@click.command()
@click.argument("specs", nargs=-1, required=True, metavar="SPEC...")
@click.option("--grid", "grids", multiple=True, metavar="PATH=V1,V2,...",
              help="a spec path and the values it takes, read like --set values (repeatable: the variants are the "
              "cartesian product, applied to every SPEC); commas inside [...] or {...} do not split")
@SPEC
@click.option("--seeds", "--seed", "seeds", default=None, metavar="S1,S2,...",
              help="run each variant once per seed (--seed passed to each run); the table shows mean ± sample "
              "standard deviation and n")
@OUT.but(type=NonEmptyPath(file_okay=False, path_type=Path), default=None, show_default=False,
         help="the sweep directory; give the same one again to resume  [default: sweeps/<spec>-<time>]")
@click.option("--shard", default=None, metavar="I/N",
              help="run only the runs whose index (0-based, in plan order) % N == I, e.g. one job of a SLURM "
              "array: --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT; needs --out (shared by the shards)")
@click.option("--dry-run", is_flag=True, help="build every variant on the meta device and print its costs; no "
              "training, nothing written")
@together(*PER_RUN)
@click.pass_context
@fail_on_spec_errors
def sweep(ctx, specs, grids, sets, unsets, seeds, out, shard, dry_run, **kw):
    """Run many variants of a spec, each a `composer run` in its own process, and collect one results table.

    \b
    composer sweep msta --grid components.msta.params.dim=64,128,256 --grid train.lr=1e-3,3e-4 \\
        --dataset ucf101 --data-root /data/ucf101 --out sweeps/msta-dim-lr
    composer sweep specs/papers/ablations/temporal-prompts-*.yaml --dataset demo --size tiny --seeds 0,1,2
    composer sweep specs/papers/ablations/msta-*.yaml --dry-run      # the cost table, nothing trained

    Every option of `composer run` is passed to every run. Each variant's spec is built first (a bad
    --grid key or value, or two variants that are the same spec, stop the sweep before anything runs).
    The sweep directory holds sweep.json, results.md and results.csv (rewritten after every run),
    variants/<run>.json, runs/<run>/ and logs/<run>.log. A run that fails is recorded and the sweep goes
    on. The same command again with the same --out skips finished runs and reruns the others; another
    command on that directory is refused. See docs/sweeps.md.

    Exit status: 0 when every run (of this shard) finished, 1 when any failed, 2 for a mistake in the
    arguments."""
    from composer.train import sweep as sw

    try:
        planned = _plan(ctx, sw, list(specs), grids, list(sets), list(unsets), seeds, out, shard, dry_run, kw)
    except sw.SweepError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    if planned is None:
        return
    _run(ctx, sw, planned, shard, list(sets), list(unsets), kw["size"] == "tiny")


def _run(ctx, sw, planned: tuple, shard: str | None, sets: list[str], unsets: list[str], tiny: bool) -> None:
    """Run this shard's jobs, print the results table, exit 1 when any run failed."""
    folder, identity, jobs, which, seed_list = planned
    mine = sw.shard(jobs, which)
    click.echo(f"sweep directory: {folder} ({len(jobs)} runs" + (f", {len(mine)} in shard {shard}" if which else "")
               + "; the same command with --out " + str(folder) + " resumes it)")
    made = sw.run_sweep(folder, identity, jobs, mine, sets, unsets, _passed_through(ctx), tiny,
                        seed_list is not None and len(seed_list) > 1, click.echo)
    click.echo((folder / "results.md").read_text(encoding="utf-8"), nl=False)
    click.echo(f"results: {folder / 'results.md'}, {folder / 'results.csv'}")
    sys.exit(1 if any(r["status"] == "failed" for r in made) else 0)


def _plan(ctx, sw, specs: list[str], grids, sets: list[str], unsets: list[str], seeds, out, shard, dry_run: bool,
          kw: dict):
    """Every check before anything runs, then the sweep directory opened: (folder, identity, jobs, shard,
    seeds); None after a dry run (the cost table printed). A mistake raises sw.SweepError."""
    from composer.rundir.run_options import RunOptions, check_run_options
    from composer.train.sweep_dir import open_dir

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
