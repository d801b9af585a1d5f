"""`composer sweep --search optuna`: trials chosen by Optuna instead of a grid, each one `composer run`.

Optuna's study is the engine: its sampler (TPE) proposes each trial's values, its pruner (median) stops a
trial whose per-epoch metric falls behind, and its storage (an SQLite file, or a database URL shared by
many machines) is where several `composer sweep` processes meet: each asks the study for the next trial
until the study holds `--trials` of them. Composer adds what it adds to a grid: each trial is a run
directory with a record, a results table, and a stop that saves (a pruned run gets the preemption signal,
so it ends with a verified checkpoint like any preempted run).

Search spaces use --grid's place: `PATH=log(LOW,HIGH)`, `float(LOW,HIGH)`, `int(LOW,HIGH)`,
`int(LOW,HIGH,log)` or `choice(A,B,...)` (values read like --set values).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import signal
import socket
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from sqlalchemy.engine import make_url

from composer.compiler.compile import BuildOptions, compile_spec
from composer.errors import cut
from composer.files import atomic_write_bytes, write_file
from composer.spec import limits
from composer.sweep.directory import SweepError, write_tables
from composer.sweep.jobs import run_job
from composer.sweep.plan import Job, Variant, load_variant, split_values

MAX_TRIALS = limits.MAX_SWEEP_RUNS
MAX_CHOICES = 1000
SPACE_KINDS = ("log", "float", "int", "choice")
PRUNERS = ("median", "none")


@dataclass(frozen=True)
class Dimension:
    """One searched spec path: `kind` (log, float, int, choice), its bounds or its choices."""

    path: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    choices: tuple[str, ...] = ()

    def text(self) -> str:
        if self.kind == "choice":
            return f"{self.path}=choice({','.join(self.choices)})"
        return f"{self.path}={self.kind}({self.low:g},{self.high:g}{',log' if self.kind == 'int' and self.log else ''})"


def _number(text: str, where: str, integer: bool) -> float:
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        raise SweepError(f"{where}: {cut(text)!r} is not {'an integer' if integer else 'a number'}") from None
    if not math.isfinite(value) or abs(value) > limits.MAX_INT:
        raise SweepError(f"{where}: {cut(text)!r} is not a finite number within 64 bits")
    return value


def parse_space(text: str) -> Dimension:
    """`--grid PATH=KIND(ARGS)` -> a Dimension; a string that does not parse is refused with its column."""
    where = f"--grid {cut(text)}"
    if "=" not in text:
        raise SweepError(f"{where}: column 1: give PATH=log(LOW,HIGH), float(...), int(...) or choice(A,B,...)")
    key, raw = text.split("=", 1)
    path = key.strip()
    if not path or not all(p.isidentifier() for p in path.split(".")):
        raise SweepError(f"{where}: column 1: {cut(path)!r} is not a spec path such as train.lr")
    column = len(key) + 2  # 1-based column of what follows '='
    match = re.fullmatch(r"\s*([a-z]+)\s*\((.*)\)\s*", raw, re.S)
    if match is None:
        found = re.match(r"\s*[a-z]*", raw).end()
        raise SweepError(f"{where}: column {column + found}: expected KIND(...), KIND one of {', '.join(SPACE_KINDS)}")
    kind, inner = match[1], match[2]
    if kind not in SPACE_KINDS:
        raise SweepError(f"{where}: column {column + match.start(1)}: unknown kind {kind!r}; one of "
                         f"{', '.join(SPACE_KINDS)}")
    args = split_values(inner)
    at = f"{where}: column {column + match.start(2)}"
    if kind == "choice":
        if any(a == "" for a in args) or len(args) < 2 or len(set(args)) != len(args) or len(args) > MAX_CHOICES:
            raise SweepError(f"{at}: choice(A,B,...) takes 2 to {MAX_CHOICES} different, non-empty values")
        return Dimension(path, kind, choices=tuple(args))
    log = kind == "log"
    if kind == "int" and len(args) == 3 and args[2] == "log":
        args, log = args[:2], True
    if len(args) != 2:
        raise SweepError(f"{at}: {kind}(LOW,HIGH{',log' if kind == 'int' else ''}) takes two bounds")
    low, high = (_number(a, at, kind == "int") for a in args)
    if not low < high:
        raise SweepError(f"{at}: LOW must be below HIGH")
    if log and low <= 0:
        raise SweepError(f"{at}: a log scale needs LOW > 0")
    return Dimension(path, kind, low, high, log)


def edges(d: Dimension) -> list[str]:
    """The values that bound a dimension, as --set values: its two ends, or every choice."""
    if d.kind == "choice":
        return list(d.choices)
    return [str(int(v)) if d.kind == "int" else repr(float(v)) for v in (d.low, d.high)]


def check_space(spec: str, dims: list[Dimension], sets: list[str], unsets: list[str], tiny: bool) -> None:
    """Build the spec at every edge of every dimension on the meta device before any trial runs, so a wrong
    path or a value the spec refuses stops the search at once (located at its --grid)."""
    if sum(len(edges(d)) for d in dims) > limits.MAX_SWEEP_RUNS:
        raise SweepError(f"the search space has more than {limits.MAX_SWEEP_RUNS} edge values to check")
    for d in dims:
        for value in edges(d):
            variant = Variant("check", spec, (f"{d.path}={value}",), "")
            compile_spec(load_variant(variant, sets, unsets, tiny), BuildOptions(device="meta", tiny=tiny))


def suggest(trial: Any, d: Dimension) -> str:
    """The trial's value for one dimension, as a --set value."""
    if d.kind == "choice":
        return trial.suggest_categorical(d.path, list(d.choices))
    if d.kind == "int":
        return str(trial.suggest_int(d.path, int(d.low), int(d.high), log=d.log))
    return repr(trial.suggest_float(d.path, d.low, d.high, log=d.log))


def shown(storage: str) -> str:
    """A storage URL as it may be printed: SQLAlchemy's own rendering, which hides a password as ***."""
    try:
        return cut(make_url(storage).render_as_string(hide_password=True))
    except Exception:  # not a URL SQLAlchemy reads: hide whatever sits between "user:" and the last "@"
        return cut(re.sub(r"(://[^:/@]*):.*@", r"\1:***@", storage))


def open_study(storage: str, name: str, prune: str, plan: dict[str, Any]) -> Any:
    """Create or join the study; refused in one line when the storage cannot be opened or holds a study of
    that name made by another search (another space, spec or objective)."""
    import optuna  # lazy: Optuna is optional (the search extra); --dry-run needs none

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0) if prune == "median" \
        else optuna.pruners.NopPruner()
    try:
        study = optuna.create_study(storage=storage, study_name=name, direction="maximize", load_if_exists=True,
                                    pruner=pruner)
    except Exception as e:  # sqlalchemy and optuna raise many kinds; one line names the storage and the reason
        first = next((line for line in str(e).splitlines() if line.strip()), type(e).__name__)
        raise SweepError(f"cannot open the Optuna storage {shown(storage)}: "
                         f"{cut(first.replace(storage, shown(storage)))}") from None
    recorded = study.user_attrs.get("composer_plan")
    if recorded is None:  # the first process records its search; one that raced it reads the winner's back
        study.set_user_attr("composer_plan", plan)
        recorded = optuna.load_study(study_name=name, storage=storage).user_attrs.get("composer_plan")
    if recorded != plan:
        what = next((k for k in plan if recorded.get(k) != plan[k]), "version")
        raise SweepError(f"the study {name!r} in {shown(storage)} was made by another search (its {what!r} differs); "
                         "give another --study or --storage")
    return study


OBJECTIVE = re.compile(r"(\S+) top-(1|5)|harmonic mean")


def check_objective(objective: str, prune: str) -> None:
    """An objective results.md has (PART top-1, PART top-5, harmonic mean); pruning needs one each epoch has."""
    if OBJECTIVE.fullmatch(objective) is None:
        raise SweepError(f"--objective {cut(objective)!r}: give a metric as results.md names it: PART top-1, PART "
                         "top-5 (e.g. 'test top-1') or 'harmonic mean'")
    if prune != "none" and objective == "harmonic mean":
        raise SweepError("--prune median needs an objective every epoch reports (PART top-1 or top-5); the "
                         "harmonic mean exists only at the end of a base-to-novel run")


def epoch_values(run_dir: Path, objective: str) -> list[float]:
    """The objective's value after each epoch so far (metrics.jsonl rows that hold it), e.g. "test top-1"."""
    part, _, metric = objective.partition(" ")
    key = {"top-1": "top1", "top-5": "top5"}.get(metric)
    path = run_dir / "metrics.jsonl"
    if key is None or not path.is_file():
        return []
    values = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line being written
        value = row.get(part, {}).get(key) if isinstance(row, dict) and isinstance(row.get(part), dict) else None
        if isinstance(value, (int, float)):
            values.append(float(value))
    return values


class PruningWatch:
    """Reports each new epoch's value of the objective to the trial; called with the run directory, it says
    True when Optuna's pruner says stop. `reported`: the values reported so far (one per epoch)."""

    def __init__(self, trial: Any, objective: str) -> None:
        self.trial, self.objective = trial, objective
        self.reported: list[float] = []

    def __call__(self, run_dir: Path) -> bool:
        values = epoch_values(run_dir, self.objective)
        for step in range(len(self.reported), len(values)):
            self.trial.report(values[step], step)
            self.reported.append(values[step])
            if self.trial.should_prune():
                return True
        return False


def _trial(trial: Any, folder: Path, spec: str, dims: list[Dimension]) -> Job:
    values = {d.path: suggest(trial, d) for d in dims}
    differs = ", ".join(f"{k}={v}" for k, v in values.items())
    name = f"trial-{trial.number:04d}"
    job = Job(trial.number, name, Variant(name, spec, tuple(f"{k}={v}" for k, v in values.items()), differs), None)
    trial.set_user_attr("run", {"name": name, "folder": str(folder.resolve()), "sets": list(job.variant.sets)})
    return job


def _claim_path(folder: Path, study: str, number: int) -> Path:
    return folder / "variants" / f"trial-{number:04d}-{hashlib.sha256(study.encode()).hexdigest()[:8]}.claim"


def claimed(folder: Path, study: str, number: int) -> bool:
    """Whether this process runs trial `number` of `study`: the first to create its claim file in variants/
    does. Optuna's SQLite storage can hand one queued trial to two processes that ask at the same moment
    (SQLite has no row lock: both read it as waiting, both mark it running); both would run it, and the second
    to finish could not tell it ("Cannot tell a COMPLETE trial": seen in CI). The file (host and process of
    the winner) is removed once the trial is told, so another study in this directory, or the same study
    made again, never finds it."""
    path = _claim_path(folder, study, number)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_file(path, f"{socket.gethostname()} {os.getpid()}\n".encode())
    except FileExistsError:
        return False
    return True


def _told(study: Any, trial: Any, folder: Path, **how: Any) -> None:
    """Tell the study how the trial ended (`state=` or `values=`), then drop its claim."""
    study.tell(trial, **how)
    _claim_path(folder, study.study_name, trial.number).unlink(missing_ok=True)


def run_search(folder: Path, spec: str, dims: list[Dimension], trials: int, study: Any, objective: str, prune: str,
               sets: list[str], unsets: list[str], run_args: list[str], tiny: bool, identity: dict[str, Any],
               say: Callable[[str], None]) -> list[dict[str, Any]]:
    """Ask the study for trials until it holds `trials` (counting every process's; two processes asking at
    the same moment can add one more each, as with Optuna's own MaxTrialsCallback), run each, tell the result.
    A trial this process cannot finish (interrupted, or an error here) is told failed before the error goes on,
    so it never stays running in the study."""
    from optuna.trial import TrialState  # lazy: Optuna is optional (the search extra); --dry-run needs none

    made: list[dict[str, Any]] = []
    begun = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)  # not WAITING (queued)
    while len(study.get_trials(deepcopy=False, states=begun)) < trials:
        trial, won = study.ask(), None  # won: None until the claim is made (an error there tells it failed)
        try:
            won = claimed(folder, study.study_name, trial.number)
            if not won:
                say(f"trial {trial.number} was handed to another process at the same moment; it runs there")
                continue
            job = _trial(trial, folder, spec, dims)
            say(f"trial {trial.number} ({len(study.get_trials(deepcopy=False, states=begun))}/{trials} in the "
                f"study): {job.variant.differs}")
            watch = PruningWatch(trial, objective) if prune != "none" else None
            record = run_job(folder, job, sets, unsets, run_args, tiny, watch=watch, stop_signal=signal.SIGTERM)
        except BaseException:
            if won is not False:  # ours, or not known to be another process's
                _told(study, trial, folder, state=TrialState.FAIL)
            raise
        _tell_result(study, trial, record, objective, watch, folder, say)
        made.append(record)
        write_results(folder, study, identity, objective)
    write_results(folder, study, identity, objective)
    return made


def _tell_result(study: Any, trial: Any, record: dict[str, Any], objective: str, watch: PruningWatch | None,
                 folder: Path, say: Callable[[str], None]) -> None:
    """The finished run's outcome, told to the study: pruned, its objective, or failed."""
    from optuna.trial import TrialState  # lazy: Optuna is optional (the search extra); --dry-run needs none

    metric = record.get("metrics", {}).get(objective)
    if record["status"] == "pruned":
        _told(study, trial, folder, state=TrialState.PRUNED)
        say(f"trial {trial.number}: pruned after epoch {len(watch.reported)} by the median rule "
            f"({objective} {watch.reported[-1]:.2f})")
    elif record["status"] == "done" and metric is not None and math.isfinite(metric):
        _told(study, trial, folder, values=metric)
        say(f"trial {trial.number}: {objective} {metric:.2f} in {record['seconds']:.0f} s")
    else:
        _told(study, trial, folder, state=TrialState.FAIL)
        why = record.get("error") or f"its summary has no finite {objective!r}"
        say(f"trial {trial.number}: failed: {why} (log: {folder / record['log']})")


def _jobs_here(folder: Path, study: Any) -> list[Job]:
    """The study's trials that ran into this sweep directory, as jobs (for the grid's results table)."""
    jobs = []
    for t in study.get_trials(deepcopy=False):
        run = t.user_attrs.get("run") or {}
        if run.get("folder") == str(folder.resolve()):
            sets = tuple(run.get("sets", []))
            jobs.append(Job(t.number, run["name"], Variant(run["name"], "", sets, ", ".join(sets)), None))
    return jobs


def study_markdown(study: Any, objective: str) -> str:
    """The study's state, its best trial and Optuna's parameter importances (PED-ANOVA), as Markdown."""
    import optuna  # lazy: Optuna is optional (the search extra); --dry-run needs none
    from optuna.trial import TrialState  # lazy: Optuna is optional (the search extra); --dry-run needs none

    trials = study.get_trials(deepcopy=False)
    counts = {s.name.lower(): sum(t.state == s for t in trials) for s in TrialState}
    lines = ["", f"## Optuna study {study.study_name}", "",
             "trials: " + ", ".join(f"{n} {k}" for k, n in counts.items() if n), ""]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if complete:
        best = study.best_trial
        lines += [f"best: trial {best.number}, {objective} {best.value:.2f}: "
                  + ", ".join(f"{k}={v}" for k, v in best.params.items()), ""]
    evaluator = optuna.importance.PedAnovaImportanceEvaluator()  # Optuna's default: how much of the top trials' spread
    try:                                                           # each parameter explains
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            importance = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (RuntimeError, ValueError) as e:  # no finished trial, or nothing varies
        lines.append(f"parameter importance: not computed ({cut(str(e))})")
    else:
        lines += ["| parameter | importance (PED-ANOVA) |", "|---|---|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in importance.items()]
        if caught:
            lines += ["", f"(Optuna: {cut(str(caught[0].message))})"]
    return "\n".join(lines) + "\n"


def write_results(folder: Path, study: Any, identity: dict[str, Any], objective: str) -> None:
    table = write_tables(folder, identity, _jobs_here(folder, study), False)
    atomic_write_bytes(folder / "results.md", (table + study_markdown(study, objective)).encode("utf-8"))
