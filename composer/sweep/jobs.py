"""One run of a sweep: `composer run` in its own process, watched, with its record; and a grid's runs in turn.

sweep/plan.py plans a sweep (its variants and jobs); sweep/search.py asks Optuna for trials; both run each
job here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from composer.rundir.records import write_json
from composer.sweep.directory import finished, record_path, resumable, summary_metrics, write_tables
from composer.sweep.plan import NOT_IDENTITY, Job, measure
from composer.train.preempt import EXIT_PREEMPTED


def _last_line(log: Path) -> str:
    try:
        lines = [line.strip() for line in log.read_text(encoding="utf-8", errors="replace").splitlines()]
    except OSError:
        return ""
    return next((line for line in reversed(lines) if line), "")


def _resume_args(run_args: list[str]) -> list[str]:
    """The passed-through options a resumed run may take afresh (those that do not identify the sweep, e.g. a
    rerun on other devices), each with --override; every other option comes from the run's own record."""
    flags = {"--" + name.replace("_", "-"): name for name in NOT_IDENTITY}
    out = []
    for flag, value in zip(run_args, run_args[1:]):
        if flag in flags:
            out += [flag, value, "--override", flags[flag].replace("_", "-")]
    return out


def _command(job: Job, sets: list[str], unsets: list[str], run_args: list[str], out: Path,
             resume: Path | None) -> list[str]:
    """The job's `composer run` (with `resume`: `composer run --resume` on that run directory)."""
    if resume is not None:
        return [sys.executable, "-m", "composer.cli", "run", "--resume", str(resume), *_resume_args(run_args)]
    command = [sys.executable, "-m", "composer.cli", "run", job.variant.spec]
    command += [a for s in [*sets, *job.variant.sets] for a in ("--set", s)]
    command += [a for u in unsets for a in ("--unset", u)]
    return command + run_args + ["--out", str(out)] + ([] if job.seed is None else ["--seed", str(job.seed)])


STOP_GRACE_S = 600  # after the stop signal, how long a run may take to save before it is killed


def _watched(command: list[str], log, env: dict, made: Callable[[], list[Path]],
             watch: Callable[[Path], bool] | None, stop_signal: int) -> tuple[int, bool]:
    """Run the command; while it runs, ask `watch` every second about the newest run directory, and send
    `stop_signal` once it says stop (a run still there STOP_GRACE_S later is killed). If this process is
    interrupted meanwhile, the run gets the signal too and is waited for: no run outlives its sweep. Returns
    (exit code, whether it was stopped)."""
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    stopped_at = None
    try:
        while process.poll() is None:
            try:
                process.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                folders = made()
                if stopped_at is None and watch is not None and folders and watch(folders[-1]):
                    process.send_signal(stop_signal)
                    stopped_at = time.monotonic()
                elif stopped_at is not None and time.monotonic() - stopped_at > STOP_GRACE_S:
                    process.kill()
    except BaseException:
        if process.poll() is None:
            process.send_signal(stop_signal)
            try:
                process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                process.kill()
        raise
    return process.returncode, stopped_at is not None


def run_job(folder: Path, job: Job, sets: list[str], unsets: list[str], run_args: list[str], tiny: bool,
            resume: Path | None = None, watch: Callable[[Path], bool] | None = None,
            stop_signal: int = signal.SIGTERM) -> dict:
    """One `composer run` in its own process (with `resume`, `composer run --resume` on that run directory);
    its record (variants/<run>.json) says how it ended. `watch` is asked every second about the run directory
    while the run goes on; when it says stop, the run gets `stop_signal` (it saves a checkpoint and exits,
    train/preempt.py) and its record says "pruned"."""
    out, log = folder / "runs" / job.name, folder / "logs" / f"{job.name}.log"
    out.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    before = {p.name for p in out.iterdir()}
    command = _command(job, sets, unsets, run_args, out, resume)
    record: dict[str, Any] = {"name": job.name, "variant": job.variant.name, "spec": job.variant.spec,
                              "sets": list(job.variant.sets), "differs": job.variant.differs, "seed": job.seed,
                              "status": "running", "log": str(log.relative_to(folder)),
                              "command": command[1:], "started": time.time()}
    if resume is not None:
        record["resumed"] = str(resume.relative_to(folder))
    write_json(record_path(folder, job), record)
    start = time.monotonic()
    # the run imports the composer this sweep runs, wherever the current folder is
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                                   os.environ.get("PYTHONPATH")])))
    def made() -> list[Path]:
        return [resume] if resume else sorted(p for p in out.iterdir() if p.name not in before and p.is_dir())
    with open(log, "a" if resume else "w", encoding="utf-8") as f:  # a resumed run's log goes on
        code, stopped = _watched(command, f, env, made, watch, stop_signal)
    record["seconds"] = round(time.monotonic() - start, 1)
    made = made()
    record["run_dir"] = str(made[-1].relative_to(folder)) if made else None
    summary_file = made[-1] / "summary.json" if made else None
    if code == 0 and summary_file is not None and summary_file.is_file():
        summary = json.loads(summary_file.read_text(encoding="utf-8"))
        record.update(status="done", metrics=summary_metrics(summary))
    elif stopped and code == EXIT_PREEMPTED:  # it saved and stopped as asked
        record.update(status="pruned", exit_code=code)
    else:
        record.update(status="failed", exit_code=code,
                      error=_last_line(log) if code != 0 else "the run ended without a summary.json")
    run_json = made[-1] / "run.json" if made else None
    if run_json is not None and run_json.is_file():  # the model the run built: its size, the dataset's classes
        classes = json.loads(run_json.read_text(encoding="utf-8"))["dataset"]["classes"]
        record.update(measure(job.variant, sets, unsets, tiny, classes))
    write_json(record_path(folder, job), record)
    return record


def run_sweep(folder: Path, identity: dict[str, Any], all_jobs: list[Job], mine: list[Job], sets: list[str],
              unsets: list[str], run_args: list[str], tiny: bool, seeds: bool,
              say: Callable[[str], None]) -> list[dict[str, Any]]:
    """Run `mine` (this shard's runs) one after another, skipping finished ones; after each, rebuild the
    tables from every record. Returns the records of the runs this call made."""
    made = []
    for i, job in enumerate(mine, 1):
        where = f"[{i}/{len(mine)}] {job.name}"
        if finished(folder, job):
            say(f"{where}: done before, skipped")
            continue
        resume = resumable(folder, job)
        say(f"{where}: {'resuming' if resume else 'running'} ({job.variant.differs or job.variant.spec}"
            + ("" if job.seed is None else f", seed {job.seed}") + ")"
            + (f" from {resume.relative_to(folder)}" if resume else ""))
        record = run_job(folder, job, sets, unsets, run_args, tiny, resume)
        made.append(record)
        shown = ", ".join(f"{k} {v:.2f}" for k, v in record.get("metrics", {}).items())
        say(f"{where}: {record['status']} in {record['seconds']:.0f} s"
            + (f": {shown}" if shown else "")
            + (f": {record['error']} (log: {folder / record['log']})" if record["status"] == "failed" else ""))
        write_tables(folder, identity, all_jobs, seeds)
    write_tables(folder, identity, all_jobs, seeds)
    return made


