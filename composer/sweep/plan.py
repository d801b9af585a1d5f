"""`composer sweep`: many variants of a spec, each one `composer run` in its own process, one results table.

A variant is a spec (one of several named) with one combination of `--grid` values applied as `--set`s;
with `--seeds` each variant runs once per seed. Every run is planned, and every variant's spec built on
the meta device, before anything trains, so a wrong key, a wrong type or two variants that are the same
model stop the sweep at once. The sweep directory:

    sweep.json          the plan (what identifies the sweep) and every run: name, spec, sets, seed, status,
                        run directory, metrics
    results.md, .csv    one row per variant: what differs, parameters, GFLOPs, metrics (mean ± std over seeds)
    variants/<run>.json one record per run, the only file a run writes (so shards on a shared filesystem never
                        write the same file); the tables are rebuilt from all of them after every run
    runs/<run>/         the run directory `composer run` makes (<spec>-<time>/)
    logs/<run>.log      the run's output

Running the same command again skips runs whose record says done and whose summary.json exists, and
resumes a run that was interrupted after its first checkpoint (`composer run --resume` on its run
directory) instead of starting it again.
"""

from __future__ import annotations

import datetime
import itertools
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable

from composer.compiler.compile import BuildOptions, compile_spec, tiny_sets
from composer.compiler.flops import count_flops
from composer.compiler.fusion import analyse
from composer.compiler.memory import MemoryModel
from composer.compiler.memory_sizes import format_bytes
from composer.compiler.precision import resolve_precision, store_frozen_in
from composer.compiler.summary import parameter_counts
from composer.errors import SpecError, cut, remember_source
from composer.rundir.resolve import resolve
from composer.spec import limits
from composer.spec.load import load_spec
from composer.spec.printer import to_yaml
from composer.sweep.directory import SweepError, parameters

PLAN_VERSION = 1
# run options that do not change a run's result: they may differ between shards and reruns of one sweep
NOT_IDENTITY = ("workers", "device", "log_with", "tracking_uri", "progress_every", "save_every")
# a `composer run` option that overrides these spec fields in every run would make a grid over them void
SHADOWED = {"lr": ("train.lr", "stages.*.lr"), "epochs": ("train.epochs", "stages.*.epochs"),
            "batch_size": ("train.batch_size",), "precision": ("train.precision",), "seeds": ("train.seed",)}
METADATA = ("name", "description", "paper", "reported")  # spec fields that do not change the model or its training


@dataclass(frozen=True)
class Variant:
    """One model to train: a spec with one combination of grid values."""

    name: str
    spec: str  # as given: a path or a shipped name
    sets: tuple[str, ...]  # the grid's PATH=VALUE for this variant (after the sweep's own --set)
    differs: str  # what sets it apart from the base, for the table


@dataclass(frozen=True)
class Job:
    """One run: a variant at one seed. `index` is its place in the plan (what --shard divides)."""

    index: int
    name: str
    variant: Variant
    seed: int | None


# ---------------------------------------------------------------- parsing the options
def split_values(text: str) -> list[str]:
    """`a,b,[1, 2],{x: 1, y: 2}` -> the values between commas outside brackets and quotes."""
    values, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            values.append(text[start:i].strip())
            start = i + 1
    values.append(text[start:].strip())
    return values


def parse_grid(text: str) -> tuple[str, list[str]]:
    """`--grid PATH=V1,V2,...` -> (PATH, [V1, V2, ...]); each value is later read like a --set value."""
    if "=" not in text:
        raise SweepError(f"--grid {cut(text)}: give PATH=V1,V2,... (e.g. --grid train.lr=1e-3,3e-4)")
    key, raw = (part.strip() for part in text.split("=", 1))
    if not key or not all(p.isidentifier() for p in key.split(".")):
        raise SweepError(f"--grid {cut(text)}: {cut(key)!r} is not a spec path; give dot-separated names such as "
                         "train.lr")
    values = split_values(raw)
    if any(v == "" for v in values):
        raise SweepError(f"--grid {cut(text)}: an empty value; give PATH=V1,V2,... with at least one value")
    if len(set(values)) != len(values):
        raise SweepError(f"--grid {cut(text)}: a value is given twice")
    return key, values


def parse_seeds(text: str) -> list[int]:
    """`0,1,2` -> [0, 1, 2]: integers as --seed reads them, within 64 bits, at most limits.MAX_SWEEP_RUNS."""
    shown = cut(text)
    values = text.split(",")
    if len(values) > limits.MAX_SWEEP_RUNS:
        raise SweepError(f"--seeds {shown}: {len(values)} seeds, more than the {limits.MAX_SWEEP_RUNS} runs a sweep "
                         "may have")
    try:
        seeds = [int(s) for s in values]
    except ValueError:
        raise SweepError(f"--seeds {shown}: give integers separated by commas, e.g. --seeds 0,1,2") from None
    if any(abs(s) > limits.MAX_INT for s in seeds):
        raise SweepError(f"--seeds {shown}: a seed must lie within 64 bits (at most {limits.MAX_INT})")
    if len(set(seeds)) != len(seeds):
        raise SweepError(f"--seeds {shown}: a seed is given twice")
    return seeds


def parse_shard(text: str) -> tuple[int, int]:
    """`I/N`, 0-based: this process runs the runs whose plan index % N == I."""
    match = re.fullmatch(r"\s*([0-9]{1,18})\s*/\s*([0-9]{1,18})\s*", text)  # 18 digits: int() never refuses
    if not match or int(match[2]) < 1 or int(match[1]) >= int(match[2]):
        raise SweepError(f"--shard {cut(text)}: give I/N with 0 <= I < N, e.g. --shard 0/4 (SLURM: "
                         "--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)")
    return int(match[1]), int(match[2])


def shard(jobs: list[Job], which: tuple[int, int] | None) -> list[Job]:
    return jobs if which is None else [j for j in jobs if j.index % which[1] == which[0]]


# ---------------------------------------------------------------- the plan
def _matches(key: str, pattern: str) -> bool:
    parts, wanted = key.split("."), pattern.split(".")
    return len(parts) >= len(wanted) and all(w in ("*", p) for w, p in zip(wanted, parts))


def check_grid(grid: list[tuple[str, list[str]]], sets: Iterable[str], shadowing: Iterable[str]) -> None:
    """Refuse grids that cannot do what they say: a key twice, a key --set also sets, a key a run option
    (`shadowing`: the names of the run options given, e.g. "lr") overrides in every run."""
    keys = [k for k, _ in grid]
    for key in keys:
        if keys.count(key) > 1:
            raise SweepError(f"--grid {key} is given twice; give its values in one --grid {key}=V1,V2,...")
        fixed = [s for s in sets if s.split("=", 1)[0].strip() == key]
        if fixed:
            raise SweepError(f"--grid {key} and --set {fixed[0]} set the same path; drop one")
        for option in shadowing:
            if any(_matches(key, p) for p in SHADOWED.get(option, ())):
                flag = "--" + option.replace("_", "-")
                raise SweepError(f"--grid {key} is overridden in every run by {flag}; drop {flag}, or the grid")


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", text).strip("_")


def _relabel(error: SpecError, labels: dict[str, tuple[str, str]]) -> SpecError:
    """Point a located error in the n-th --set at the --grid it came from."""
    for problem in error.problems:
        if problem.loc is not None and problem.loc.file in labels:
            label, text = labels[problem.loc.file]
            remember_source(label, text)
            problem.loc = replace(problem.loc, file=label)
    return error


def canonical(spec) -> str:
    """The resolved spec as YAML, without the fields that do not change the model or its training."""
    data = spec.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    return to_yaml({k: v for k, v in data.items() if k not in METADATA})


def load_variant(variant: Variant, sets: list[str], unsets: list[str], tiny: bool):
    """The variant's spec as its run will load it (the sweep's --set, then the grid's, then the tiny size),
    with located errors pointing at the --grid a bad value came from."""
    all_sets = list(sets) + list(variant.sets)
    labels = {f"<--set #{len(sets) + i}>": (f"<--grid {s.split('=', 1)[0]}>", s)
              for i, s in enumerate(variant.sets, 1)}
    all_sets = tiny_sets(all_sets, tiny)
    try:
        return load_spec(variant.spec, all_sets, unsets)
    except SpecError as e:
        raise _relabel(e, labels) from None


def check_count(specs: list[str], grid: list[tuple[str, list[str]]], seeds: list[int] | None) -> int:
    """The number of runs (specs x every grid's values x seeds), refused over limits.MAX_SWEEP_RUNS before any
    variant is enumerated or built (each costs a build on the meta device, --dry-run included)."""
    if len(grid) > limits.MAX_OVERRIDES:
        raise SweepError(f"{len(grid)} --grid options, more than {limits.MAX_OVERRIDES}")
    runs = len(specs) * max(1, len(seeds or ()))
    for _, values in grid:
        if runs > limits.MAX_SWEEP_RUNS:
            break
        runs *= len(values)
    if runs > limits.MAX_SWEEP_RUNS:
        sizes = " x ".join([f"{len(specs)} spec(s)"] + [f"{len(v)} values of {k}" for k, v in grid]
                           + ([f"{len(seeds)} seeds"] if seeds else []))
        shown = sizes if len(sizes) <= 200 else sizes[:197] + "..."
        raise SweepError(f"the sweep has more than {limits.MAX_SWEEP_RUNS} runs ({shown}); split it into "
                         "smaller sweeps (--shard divides one sweep's runs between jobs, it does not shrink it)")
    return runs


def plan(specs: list[str], grid: list[tuple[str, list[str]]], sets: list[str], unsets: list[str],
         tiny: bool) -> list[Variant]:
    """Every spec times the cartesian product of the grid, each loaded and built on the meta device now (so a
    bad variant stops the sweep before anything runs); two variants that are the same model are refused."""
    if len(set(specs)) != len(specs):
        raise SweepError("a SPEC is named twice")
    variants, seen = [], {}
    for spec in specs:
        load_spec(spec, sets, unsets)  # the spec's own mistakes, before any --grid's
        stem = Path(spec).stem  # the file's name, not spec.name (inherited from the spec it extends)
        for values in itertools.product(*(v for _, v in grid)) if grid else [()]:
            combo = [(k, v) for (k, _), v in zip(grid, values)]
            name = _safe("-".join([stem] + [f"{k.split('.')[-1]}={v}" for k, v in combo]))
            differs = ", ".join(([stem] if len(specs) > 1 or not combo else []) + [f"{k}={v}" for k, v in combo])
            variant = Variant(name, spec, tuple(f"{k}={v}" for k, v in combo), differs)
            loaded = load_variant(variant, sets, unsets, tiny)
            compile_spec(loaded, BuildOptions(device="meta", tiny=tiny))  # graph and shape errors, located
            key = canonical(loaded)
            if key in seen:
                raise SweepError(f"variants {seen[key]} and {name} ({differs}) resolve to the same spec; drop one")
            seen[key] = f"{name} ({differs})"
            variants.append(variant)
    names = [v.name for v in variants]
    if len(set(names)) != len(names) or any(len(n) > 100 for n in names):  # e.g. two files with one stem
        variants = [replace(v, name=f"{i:03d}-{v.name[:90]}") for i, v in enumerate(variants)]
    return variants


def jobs(variants: list[Variant], seeds: list[int] | None) -> list[Job]:
    """Variant-major, seed-minor: the plan's run order and the indices --shard divides."""
    out = []
    for variant in variants:
        for seed in seeds or [None]:
            name = variant.name if seeds is None or len(seeds) == 1 else f"{variant.name}-seed{seed}"
            out.append(Job(len(out), name, variant, seed))
    return out


# ---------------------------------------------------------------- costs
def measure(variant: Variant, sets: list[str], unsets: list[str], tiny: bool, classes: int | None = None,
            memory: tuple[int, str] | None = None) -> dict[str, Any]:
    """Parameters and GFLOPs per clip of the variant's model (meta device; `classes`: the dataset's count),
    and with `memory` = (batch size, precision) the predicted peak of one training step with every frozen
    block it can recomputed (what `composer build --batch-size B --recompute all` prints)."""
    spec = load_variant(variant, sets, unsets, tiny)
    model = compile_spec(spec, BuildOptions(device="meta", tiny=tiny, num_classes=classes))
    parts = parameter_counts(model)
    out = {"trainable_params": sum(p["trainable"] for p in parts.values()),
           "total_params": sum(p["total"] for p in parts.values()),
           "gflops": round(count_flops(model).per_clip / 1e9, 3)}
    if memory is not None:
        batch, precision = memory
        store_frozen_in(model, precision)
        out["memory"] = MemoryModel(model, precision).bill(batch).peak
        out["memory_at"] = (batch, precision)
    return out


def fusion_groups(variants: list[Variant], sets: list[str], unsets: list[str], tiny: bool, options) -> list:
    """Which variants share a frozen prefix, and how much (compiler/fusion.py), each built on the meta device
    and read with the batch size and seed its run would use (`options`: the run options given)."""
    built = []
    for v in variants:
        spec = load_variant(v, sets, unsets, tiny)
        settled = resolve(spec, options)
        settings = {"batch_size": settled.batch, "seed": settled.seed,
                    "precision": resolve_precision(settled.precision), "epochs": [s.epochs for s in settled.schedules]}
        built.append((v.name, compile_spec(spec, BuildOptions(device="meta", tiny=tiny)), settings))
    return analyse(built)


def cost_table(variants: list[Variant], rows: list[dict[str, Any]]) -> str:
    """The --dry-run table, in Markdown; rows measured with `memory` get a peak-memory column."""
    at = {row["memory_at"] for row in rows if "memory_at" in row}
    head = ["variant", "differs", "trainable", "total", "GFLOPs / clip"]
    if at:
        head.append("peak memory" + (" (batch {}, {})".format(*next(iter(at))) if len(at) == 1 else ""))
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for variant, row in zip(variants, rows):
        cells = [variant.name, variant.differs, parameters(row["trainable_params"]), parameters(row["total_params"]),
                 f"{row['gflops']:.2f}"]
        if at:
            cells.append(format_bytes(row["memory"]) + (" (batch {}, {})".format(*row["memory_at"])
                                                        if len(at) > 1 else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def default_dir(specs: list[str]) -> Path:
    base = Path(specs[0]).stem + ("-etc" if len(specs) > 1 else "")
    return Path("sweeps") / f"{base}-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}"


def identity(specs: list[str], grid: list[tuple[str, list[str]]], sets: list[str], unsets: list[str],
             seeds: list[int] | None, options: dict[str, Any], all_jobs: list[Job]) -> dict[str, Any]:
    """What makes two sweep commands the same sweep (kept in sweep.json; shards and reruns must match it)."""
    out = {"version": PLAN_VERSION, "specs": list(specs), "grid": [[k, list(v)] for k, v in grid],
            "sets": list(sets), "unsets": list(unsets), "seeds": seeds,
            "options": {k: v for k, v in sorted(options.items()) if k not in NOT_IDENTITY},
            "runs": [j.name for j in all_jobs]}
    return json.loads(json.dumps(out, default=str))  # as sweep.json holds it (tuples as lists, paths as text)
