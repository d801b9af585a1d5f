"""Experiment trackers (`--log-with tensorboard|mlflow|wandb|none`) through Accelerate's trackers.

The loop creates `Accelerator(log_with=names, project_dir=run_dir)` and logs with `accelerator.log`; this
module chooses and checks the names before anything runs, and starts the trackers so their files land in
the run directory:

    RUN_DIR/composer/            TensorBoard event files (hyper-parameters in a time-stamped sub-folder)
    RUN_DIR/mlflow.db            MLflow's SQLite store (unless a tracking URI is given)
    RUN_DIR/mlartifacts/         MLflow artifacts of that store
    RUN_DIR/mlflow-run.json      the MLflow run's id, so that `composer run --resume` continues that run
    RUN_DIR/wandb/               W&B files (offline with WANDB_MODE=offline)

Accelerate drops a tracker whose package is missing without a word; composer refuses instead, before
training, with the line that installs it. Only the main process starts trackers: `Accelerator.init_trackers`
and `Accelerator.log` are main-process-only in Accelerate.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import posixpath
import re
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from composer.errors import DataError, did_you_mean

PROJECT = "composer"  # TensorBoard's sub-folder, MLflow's experiment and W&B's project
MLFLOW_RUN = "mlflow-run.json"  # in the run directory: {"run_id": ..., "tracking_uri": ...}

# tracker -> (packages it imports, the line that installs them)
TRACKERS: dict[str, tuple[tuple[str, ...], str]] = {
    "tensorboard": (("tensorboard",), "pip install tensorboard==2.21.0"),
    "mlflow": (("mlflow", "sqlalchemy", "alembic"),
               "pip install mlflow-skinny==3.17.2 sqlalchemy==2.1.9 alembic==1.20.1"),
    "wandb": (("wandb",), "pip install wandb==0.31.0"),
}

# MLflow's limits on parameters (mlflow.utils.validation); TensorBoard and W&B accept anything MLflow does.
MAX_KEY_LENGTH = 250
MAX_VALUE_LENGTH = 6000
_VALID_KEY = re.compile(r"^[/\w.\- :]*$")

Scalar = bool | int | float | str


def parse_trackers(names: Sequence[str]) -> list[str]:
    """The trackers a run logs with, from `--log-with` values (repeated and/or comma-separated).

    Nothing given means TensorBoard when it is installed (else none); `none` alone turns tracking off.
    Unknown names and trackers whose packages are missing are refused here, before any training,
    because Accelerate would silently skip them.
    """
    given = [part.strip().lower() for name in names for part in name.split(",") if part.strip()]
    if not given:
        return ["tensorboard"] if _installed("tensorboard") else []
    if "none" in given:
        others = [n for n in given if n != "none"]
        if others:
            raise DataError(f"--log-with none turns tracking off and cannot be combined with {', '.join(others)}; "
                            "give either none or tracker names")
        return []
    chosen: list[str] = []
    for name in given:
        if name not in TRACKERS:
            hint = did_you_mean(name, TRACKERS)
            raise DataError(f"unknown tracker '{name}' in --log-with; known: {', '.join(TRACKERS)}, none"
                            + (f" ({hint})" if hint else ""))
        packages, install = TRACKERS[name]
        missing = [p for p in packages if not _installed(p)]
        if missing:
            raise DataError(f"--log-with {name} needs {', '.join(missing)}, which is not installed: {install}")
        if name not in chosen:
            chosen.append(name)
    return chosen


def start_trackers(accelerator: Any, names: Sequence[str], run_dir: Path, run_name: str,
                   config: Mapping[str, Any], tracking_uri: str | None = None, resumed_step: int = 0) -> str | None:
    """Start the run on every tracker and record `config` ({"spec": ..., "options": ...}) as hyper-parameters.

    `resumed_step`: a resumed run continues after this optimiser step. What the interrupted run logged after
    it (up to its crash) is logged again, so TensorBoard is told to purge it (`purge_step`): without that a
    resumed run's event files hold every step after the checkpoint twice.

    `accelerator` must have been created with `log_with=names, project_dir=run_dir`. MLflow uses
    `tracking_uri`, else MLFLOW_TRACKING_URI from the environment, else `sqlite:///RUN_DIR/mlflow.db`.
    The MLflow run's id is kept in RUN_DIR/mlflow-run.json: a resumed run directory continues that MLflow
    run (its metrics go on at the resumed step) instead of opening a second one. Returns a line for the
    user when a recorded MLflow run cannot be continued (a new one is started then), else None.
    Does nothing on processes other than the main one. A tracker that cannot start raises DataError.
    """
    if not names or not accelerator.is_main_process:
        return None
    run_dir = Path(run_dir).resolve()
    _check_accelerator(accelerator, names, run_dir)
    init_kwargs: dict[str, dict[str, Any]] = {}
    if "tensorboard" in names and resumed_step:
        init_kwargs["tensorboard"] = {"purge_step": resumed_step + 1}
    if "wandb" in names:
        init_kwargs["wandb"] = {"name": run_name, "dir": str(run_dir)}
    flat = flatten_config(config)
    if "mlflow" not in names:
        accelerator.init_trackers(PROJECT, config=flat, init_kwargs=init_kwargs)
        return None
    return _start_mlflow(accelerator, names, run_dir, run_name, flat, init_kwargs, tracking_uri)


def _check_accelerator(accelerator: Any, names: Sequence[str], run_dir: Path) -> None:
    """The Accelerator logs with the trackers asked for, and TensorBoard writes inside the run directory."""
    declared = sorted(str(t) for t in accelerator.log_with)
    if declared != sorted(names):
        raise ValueError(f"the Accelerator logs with {declared} but the run asked for {sorted(names)}: "
                         "create it with log_with=names")
    if "tensorboard" in names and Path(accelerator.logging_dir).resolve() != run_dir:
        raise ValueError(f"TensorBoard would write under {accelerator.logging_dir}, not the run directory "
                         f"{run_dir}: create the Accelerator with project_dir=run_dir")


def _start_mlflow(accelerator: Any, names: Sequence[str], run_dir: Path, run_name: str, flat: dict[str, Any],
                  init_kwargs: dict[str, dict[str, Any]], tracking_uri: str | None) -> str | None:
    """Every tracker started with MLflow among them: a new MLflow run, or the one RUN_DIR/mlflow-run.json
    records (a resumed run), whose id is then kept there."""
    from mlflow.exceptions import MlflowException  # lazy: MLflow only when --log-with mlflow

    uri = mlflow_uri(run_dir, tracking_uri)
    init_kwargs["mlflow"] = {"run_name": run_name}
    if uri == _local_store(run_dir):  # keep artifacts next to the store, not in ./mlruns of the working directory
        init_kwargs["mlflow"]["logging_dir"] = str(run_dir / "mlartifacts")
        _skip_fsync(run_dir / "mlflow.db")
    run_dir.mkdir(parents=True, exist_ok=True)
    _use_mlflow_store(uri)
    try:
        with _quiet("mlflow", "alembic"):
            continued, note = _recorded_mlflow_run(run_dir, uri)
            if continued is None:
                accelerator.init_trackers(PROJECT, config=flat, init_kwargs=init_kwargs)
            else:
                init_kwargs["mlflow"]["run_id"] = continued.info.run_id
                accelerator.init_trackers(PROJECT, config=None, init_kwargs=init_kwargs)
                for name in names:  # MLflow refuses to change a logged parameter: it gets the new ones only
                    values = flat if name != "mlflow" else {k: v for k, v in flat.items()
                                                            if k not in continued.data.params}
                    if values:
                        accelerator.get_tracker(name, unwrap=False).store_init_configuration(values)
    except MlflowException as e:
        reason = str(e).strip().splitlines()[0][:300]
        raise DataError(f"MLflow could not start with tracking URI {uri}: {reason} "
                        "(give --tracking-uri sqlite:///PATH/mlflow.db or an http(s) MLflow server)") from None
    run_id = accelerator.get_tracker("mlflow", unwrap=False).active_run.info.run_id
    from composer.rundir.records import write_json  # torch: this module is read by commands that need none

    write_json(run_dir / MLFLOW_RUN, {"run_id": run_id, "tracking_uri": uri})
    return note


def _recorded_mlflow_run(run_dir: Path, uri: str) -> tuple[Any, str | None]:
    """The MLflow run RUN_DIR/mlflow-run.json names, when `uri`'s store holds it (a resumed run), and a
    line saying why a recorded run cannot be continued; (None, None) for a new run directory."""
    record = run_dir / MLFLOW_RUN
    if not record.exists():
        return None, None
    try:
        run_id = json.loads(record.read_text(encoding="utf-8"))["run_id"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        return None, f"{record} cannot be read ({e}); this resumed run logs to a new MLflow run"
    from mlflow.exceptions import MlflowException  # lazy: MLflow only when --log-with mlflow
    from mlflow.tracking import MlflowClient  # lazy: MLflow only when --log-with mlflow

    try:
        found = MlflowClient(uri).get_run(run_id)
    except MlflowException:
        found = None
    if found is None or found.info.lifecycle_stage != "active":
        return None, (f"the MLflow run {run_id} of {record} is not in the store {uri} (or was deleted); this "
                      "resumed run logs to a new MLflow run")
    return found, None


def mlflow_uri(run_dir: Path, tracking_uri: str | None = None) -> str:
    """Where MLflow stores the run: the given URI, else MLFLOW_TRACKING_URI, else a SQLite file in the run dir."""
    return tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or _local_store(Path(run_dir).resolve())


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, Scalar]:
    """Nested dicts as `spec.components.adapter.params.dim`-style keys with scalar values.

    TensorBoard's hparams and MLflow's params take only scalars: lists, None and empty dicts become their
    JSON text. Keys and values are made to fit MLflow's limits (see `param_key`, `param_value`).
    """
    out: dict[str, Scalar] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten_config(value, name + "."))
        else:
            out[param_key(name)] = param_value(value)
    return out


def param_key(name: str) -> str:
    """`name` itself when MLflow accepts it as a parameter or metric name, else a valid, distinct stand-in.

    MLflow refuses keys longer than 250 characters, characters other than letters, digits, `_-. :/` and
    keys that are not normalised paths (`a//b`). The stand-in replaces such characters with `_`, cuts the
    key and appends a hash of the original, so two different keys never merge.
    """
    if len(name) <= MAX_KEY_LENGTH and _VALID_KEY.match(name) and posixpath.normpath(name) == name \
            and not name.startswith("/"):
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    cleaned = re.sub(r"[^\w.\- :]", "_", name)
    return f"{cleaned[:MAX_KEY_LENGTH - len(digest) - 1]}-{digest}"


def param_value(value: Any) -> Scalar:
    """A scalar MLflow accepts; text longer than its 6000-character limit is cut with a visible marker."""
    if not isinstance(value, (bool, int, float, str)):
        value = json.dumps(value, default=str)
    if isinstance(value, str) and len(value) > MAX_VALUE_LENGTH:
        marker = f"...[cut from {len(value)} characters]"
        value = value[:MAX_VALUE_LENGTH - len(marker)] + marker
    return value


def _installed(package: str) -> bool:
    return find_spec(package) is not None


def _local_store(run_dir: Path) -> str:
    return f"sqlite:///{run_dir / 'mlflow.db'}"


def _use_mlflow_store(uri: str) -> None:
    """Point MLflow's fluent API (which Accelerate's tracker uses) at `uri` for this run.

    `mlflow.set_tracking_uri` also exports MLFLOW_TRACKING_URI to the environment; we put the environment
    back, so a later run in the same process (tests, notebooks) never inherits this run's store.
    """
    import mlflow  # lazy: MLflow only when --log-with mlflow

    before = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before


_UNSYNCED: set[str] = set()  # SQLite files of run directories' own MLflow stores


def _skip_fsync(db: Path) -> None:
    """Open this run's own SQLite store without fsync on every commit.

    Creating the store runs MLflow's schema migrations, one commit each, and every logged step is another
    commit; with fsync that cost ~6 s at start and ~25-40 ms a step on a plain disk, without it ~2 s and ~8 ms.
    The price is that an operating-system crash (not a crash of the run) may lose the store's last writes;
    metrics.jsonl keeps them. A store given with --tracking-uri is left as it is.
    """
    from sqlalchemy import event  # lazy: SQLAlchemy only for MLflow's local SQLite store
    from sqlalchemy.engine import Engine  # lazy: SQLAlchemy only for MLflow's local SQLite store

    _UNSYNCED.add(str(db))
    if not event.contains(Engine, "connect", _unsynced_connection):
        event.listen(Engine, "connect", _unsynced_connection)


def _unsynced_connection(connection: Any, _record: Any) -> None:
    if isinstance(connection, sqlite3.Connection):
        row = connection.execute("PRAGMA database_list").fetchone()
        if row is not None and row[2] in _UNSYNCED:
            connection.execute("PRAGMA synchronous=OFF")


@contextmanager
def _quiet(*loggers: str) -> Iterator[None]:
    """Hide INFO chatter (MLflow's "Creating initial MLflow database tables...") while keeping warnings."""
    saved = [(logging.getLogger(n), logging.getLogger(n).level) for n in loggers]
    for logger, _ in saved:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in saved:
            logger.setLevel(level)
