"""A sweep's directory (composer/sweep/plan.py has the layout): its plan record, each run's record, and the
tables rebuilt from them. A record is believed only in the form the sweep writes it: anything else (a hand's
edit, a damaged file) is a one-line refusal for sweep.json, and a run not done yet for a run's record."""

from __future__ import annotations

import csv
import io
import json
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any

from composer.errors import cut
from composer.rundir.checkpoint_dir import latest_checkpoint
from composer.rundir.records import write_json, write_text

if TYPE_CHECKING:
    from composer.sweep.plan import Job

# what a sweep directory holds (study.db: an Optuna search's default storage, sweep/search.py)
OURS = ("sweep.json", "results.md", "results.csv", "variants", "runs", "logs", "study.db")


class SweepError(Exception):
    """A mistake in a sweep's arguments or directory: one line, exit status 2."""


def open_dir(folder: Path, identity: dict[str, Any]) -> None:
    """Create the sweep directory, or check that an existing one was made by this sweep (same plan)."""
    record = folder / "sweep.json"
    if record.exists():
        try:
            document = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as e:
            raise SweepError(f"cannot read {record}: {cut(str(e))}; give another --out") from None
        if not isinstance(document, dict) or not isinstance(document.get("plan"), dict):
            raise SweepError(f"{record} is not a sweep record (no plan in it); give another --out")
        recorded = document["plan"]
        if recorded != identity:
            what = next((k for k in identity if (recorded or {}).get(k) != identity[k]), "version")
            raise SweepError(f"{folder} holds another sweep (its '{what}' differs from this command's); "
                             "give another --out, or repeat that sweep's own command to resume it")
        return
    # another shard may be creating it at this moment: only what a sweep writes may be there already
    if folder.exists() and (not folder.is_dir() or any(p.name not in OURS and not p.name.startswith(".sweep.json.")
                                                       for p in folder.iterdir())):
        raise SweepError(f"{folder} exists and is not a sweep directory (no sweep.json); give another --out")
    try:
        (folder / "variants").mkdir(parents=True, exist_ok=True)
        write_json(record, {"plan": identity, "runs": []})
    except OSError as e:
        raise SweepError(f"cannot write the sweep directory {folder}: {e.strerror or e}") from None


def record_path(folder: Path, job: Job) -> Path:
    return folder / "variants" / f"{job.name}.json"


STATUSES = ("running", "failed", "done", "pruned")  # pruned: stopped by an Optuna search (sweep/search.py)
# the fields of a job's record besides status and metrics, and what each may hold (or None)
RECORD_FIELDS = {"run_dir": (str,), "seconds": (int, float), "error": (str,), "log": (str,),
                 "trainable_params": (int,), "gflops": (int, float)}


def read_record(folder: Path, job: Job) -> dict[str, Any] | None:
    """A job's record as the sweep wrote it, or None (missing, unreadable, or not in the form the sweep writes:
    then the job counts as not run, and running it again resumes its run directory)."""
    try:
        record = json.loads(record_path(folder, job).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(record, dict) or record.get("status") not in STATUSES or \
            not all(_is(record.get(key), kinds) for key, kinds in RECORD_FIELDS.items()):
        return None
    metrics = record.get("metrics", {})
    if not (isinstance(metrics, dict) and all(_is(v, (int, float)) for v in metrics.values())):
        return None
    if record["status"] == "done" and not (_is(record.get("seconds"), (int, float)) and record.get("run_dir")):
        return None
    return record


def _is(value: Any, kinds: tuple[type, ...]) -> bool:
    """`value` is None or one of `kinds`, a bool never counting as a number."""
    return value is None or (isinstance(value, kinds) and not isinstance(value, bool))


def finished(folder: Path, job: Job) -> bool:
    """Whether the job's record says done and its run directory, one inside the sweep's runs/<job>/ (a record
    naming any other path is not believed), holds a summary.json."""
    record = read_record(folder, job)
    run_dir = record.get("run_dir") if isinstance(record, dict) else None
    if not (isinstance(run_dir, str) and record.get("status") == "done"):
        return False
    parts = Path(run_dir).parts
    inside = len(parts) == 3 and parts[:2] == ("runs", job.name) and parts[2] not in (".", "..")
    return inside and (folder / run_dir / "summary.json").is_file()


def summary_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """The protocol's metrics: top-1 and top-5 of each test part, and the harmonic mean for base-to-novel."""
    out = {}
    for part, m in summary.get("parts", {}).items():
        for key, label in (("top1", "top-1"), ("top5", "top-5")):
            if key in m:
                out[f"{part} {label}"] = m[key]
    if "harmonic_mean" in summary:
        out["harmonic mean"] = summary["harmonic_mean"]
    return out


def resumable(folder: Path, job: Job) -> Path | None:
    """The run directory an interrupted attempt at this run left behind with a checkpoint to resume from (the
    newest; None when there is none): the sweep (or the run) was stopped after the run's first save."""
    runs = folder / "runs" / job.name
    found = [p for p in sorted(runs.iterdir()) if (p / "run.json").is_file() and (p / "spec.yaml").is_file()
             and not (p / "summary.json").exists() and latest_checkpoint(p / "checkpoints") is not None] \
        if runs.is_dir() else []
    return found[-1] if found else None


def _spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def results(folder: Path, all_jobs: list[Job]) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per variant from the records of its runs, and the metric columns (in first-seen order).
    Over several seeds a metric is the mean and the sample standard deviation (n - 1) of the finished runs."""
    rows, columns = [], []
    by_variant: dict[str, list[tuple[Job, dict | None]]] = {}
    for job in all_jobs:
        by_variant.setdefault(job.variant.name, []).append((job, read_record(folder, job)))
    for name, runs in by_variant.items():
        records = [r for _, r in runs if r]
        done = [r for r in records if r.get("status") == "done"]
        statuses = [r.get("status", "pending") if r else "pending" for _, r in runs]
        status = next((s for s in ("running", "failed", "pruned", "pending") if s in statuses), "done")
        if status == "failed" and len(runs) > 1:
            status = f"failed ({statuses.count('failed')} of {len(runs)})"
        metrics: dict[str, list[float]] = {}
        for r in done:
            for key, value in r.get("metrics", {}).items():
                metrics.setdefault(key, []).append(value)
                columns += [] if key in columns else [key]
        sized = next((r for r in [*done, *records] if "trainable_params" in r), {})
        failed = next((r for r in records if r.get("status") == "failed"), None)
        rows.append({
            "variant": name, "differs": runs[0][0].variant.differs, "status": status,
            "n": len(done), "runs": len(runs), "trainable_params": sized.get("trainable_params"),
            "gflops": sized.get("gflops"), "metrics": metrics,
            "seconds": round(statistics.mean(r["seconds"] for r in done), 1) if done else None,
            "run_dirs": [r["run_dir"] for r in records if r.get("run_dir")],
            "error": f"{failed.get('error') or ''} (log: {failed.get('log')})" if failed else "",
        })
    return rows, columns


def markdown(rows: list[dict[str, Any]], columns: list[str], seeds: bool) -> str:
    head = ["variant", "differs", "status"] + (["n"] if seeds else []) + ["trainable", "GFLOPs / clip"] \
        + columns + ["seconds", "run directory"]
    errors = any(r["error"] for r in rows)
    head += ["error"] if errors else []
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["variant"], r["differs"], r["status"]] + ([f"{r['n']}/{r['runs']}"] if seeds else []) + [
            parameters(r["trainable_params"]), "" if r["gflops"] is None else f"{r['gflops']:.2f}"]
        cells += [_spread(r["metrics"][c]) if c in r["metrics"] else "" for c in columns]
        cells += ["" if r["seconds"] is None else f"{r['seconds']:.0f}", " ".join(r["run_dirs"])]
        cells += [r["error"]] if errors else []
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    note = "\n(over seeds: mean ± sample standard deviation of the n finished runs)\n" if seeds else ""
    return "\n".join(lines) + "\n" + note


def csv_text(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """The same rows as numbers: a metric's mean, and its sample standard deviation over seeds (`<metric> std`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["variant", "differs", "status", "n", "runs", "trainable_params", "gflops"]
                    + [x for c in columns for x in (c, f"{c} std")] + ["seconds", "run_dirs", "error"])
    for r in rows:
        values = []
        for c in columns:
            v = r["metrics"].get(c, [])
            values += [statistics.mean(v) if v else "", statistics.stdev(v) if len(v) > 1 else ""]
        writer.writerow([r["variant"], r["differs"], r["status"], r["n"], r["runs"], r["trainable_params"],
                         r["gflops"], *values, r["seconds"] if r["seconds"] is not None else "",
                         " ".join(r["run_dirs"]), r["error"]])
    return buffer.getvalue()


def write_tables(folder: Path, identity: dict[str, Any], all_jobs: list[Job], seeds: bool) -> str:
    """Rebuild sweep.json, results.md and results.csv from every run's record (atomic writes); returns the
    Markdown table."""
    rows, columns = results(folder, all_jobs)
    runs = []
    for job in all_jobs:
        record = read_record(folder, job) or {}
        runs.append({"name": job.name, "variant": job.variant.name, "spec": job.variant.spec,
                     "sets": list(job.variant.sets), "seed": job.seed, "status": record.get("status", "pending"),
                     "run_dir": record.get("run_dir"), "metrics": record.get("metrics", {}),
                     "seconds": record.get("seconds"), "error": record.get("error"), "log": record.get("log"),
                     "trainable_params": record.get("trainable_params"), "gflops": record.get("gflops")})
    write_json(folder / "sweep.json", {"plan": identity, "runs": runs})
    table = markdown(rows, columns, seeds)
    write_text(folder / "results.md", table)
    write_text(folder / "results.csv", csv_text(rows, columns))
    return table


def parameters(n: int | None) -> str:
    return "" if n is None else f"{n / 1e6:,.2f}M" if n >= 10_000 else f"{n:,}"
