"""Trackers: `--log-with` parsing, and values written through Accelerate read back from TensorBoard's event
files and MLflow's SQLite store."""

import os
from pathlib import Path

import pytest

from composer.errors import DataError
from composer.train import tracking
from composer.train.tracking import (
    MAX_KEY_LENGTH,
    MAX_VALUE_LENGTH,
    flatten_config,
    mlflow_uri,
    param_key,
    parse_trackers,
    start_trackers,
)

CONFIG = {
    "spec": {"name": "tiny", "components": {"adapter": {"kind": "lora", "params": {"dim": 64, "alpha": 0.5},
                                                        "site": ["clip.visual.blocks[1-12].attn"]}},
             "train": {"betas": [0.9, 0.98], "views": {}}},
    "options": {"dataset": "demo", "epochs": 2, "tiny": True, "seed": None, "sets": []},
}
# (step, values) as the loop logs them: per optimizer step, then per epoch on the epoch's last step
LOGGED = [
    (1, {"loss": 2.5, "loss/ce_loss": 2.0, "loss/cc_loss": 0.5, "lr/adapter": 1e-3, "lr/adapter.no_decay": 1e-3,
         "grad_norm": 3.25, "clips_per_s": 41.5}),
    (2, {"loss": 1.75, "loss/ce_loss": 1.5, "loss/cc_loss": 0.25, "lr/adapter": 5e-4, "lr/adapter.no_decay": 5e-4,
         "grad_norm": 1.125, "clips_per_s": 43.0}),
    (2, {"train/loss": 2.125, "test/top1": 50.0, "test/top5": 100.0, "test/mean_class": 37.5}),
]


@pytest.fixture
def clean_mlflow(monkeypatch):
    """No MLflow store from the environment or from an earlier test; the global URI is unset afterwards."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    yield
    import mlflow

    if mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(None)


def _accelerator(names, run_dir: Path):
    from accelerate import Accelerator

    return Accelerator(cpu=True, log_with=list(names), project_dir=str(run_dir))


def _run(names, run_dir: Path, run_name: str = "run-a", tracking_uri=None) -> None:
    accelerator = _accelerator(names, run_dir)
    start_trackers(accelerator, names, run_dir, run_name, CONFIG, tracking_uri)
    for step, values in LOGGED:
        accelerator.log(values, step=step)
    accelerator.end_training()


def _expected() -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {}
    for step, values in LOGGED:
        for tag, value in values.items():
            out.setdefault(tag, []).append((step, value))
    return out


def read_tensorboard_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / tracking.PROJECT), size_guidance={"scalars": 0}).Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def read_tensorboard_hparams(run_dir: Path) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    found = {}
    for folder in (run_dir / tracking.PROJECT).iterdir():
        if any(folder.glob("events.out.tfevents.*")):  # the other time-stamped folder holds Accelerate's hparams.yml
            content = EventAccumulator(str(folder)).Reload().PluginTagToContent("hparams")
            for blob in content.values():
                data = plugin_data_pb2.HParamsPluginData.FromString(blob)
                for name, value in data.session_start_info.hparams.items():
                    found[name] = getattr(value, value.WhichOneof("kind"))
    return found


def read_mlflow(uri: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(tracking.PROJECT)
    return [] if experiment is None else client.search_runs([experiment.experiment_id])


def mlflow_history(uri: str, run_id: str, key: str) -> list[tuple[int, float]]:
    from mlflow.tracking import MlflowClient

    return sorted((m.step, m.value) for m in MlflowClient(uri).get_metric_history(run_id, key))


# -- parse_trackers

def test_default_is_tensorboard_and_names_may_be_repeated_or_comma_separated():
    assert parse_trackers([]) == ["tensorboard"]
    assert parse_trackers(["mlflow,tensorboard"]) == ["mlflow", "tensorboard"]
    assert parse_trackers(["tensorboard", "MLflow", "tensorboard"]) == ["tensorboard", "mlflow"]
    assert parse_trackers(["none"]) == []


def test_unknown_tracker_is_refused_with_the_known_names():
    with pytest.raises(DataError, match=r"unknown tracker 'tensorbord'.*tensorboard, mlflow, wandb, none.*"
                                        r"did you mean 'tensorboard'"):
        parse_trackers(["mlflow,tensorbord"])


def test_none_with_a_tracker_is_refused():
    with pytest.raises(DataError, match="cannot be combined with mlflow"):
        parse_trackers(["none", "mlflow"])


@pytest.mark.skipif(tracking._installed("wandb"), reason="wandb is installed here")
def test_missing_wandb_is_refused_with_the_install_line():
    with pytest.raises(DataError, match=r"needs wandb, which is not installed: pip install wandb==\d+\.\d+\.\d+$"):
        parse_trackers(["tensorboard", "wandb"])


def test_mlflow_without_its_sqlite_store_packages_is_refused(monkeypatch):
    monkeypatch.setattr(tracking, "_installed", lambda package: package != "sqlalchemy")
    with pytest.raises(DataError, match=r"needs sqlalchemy.*pip install mlflow-skinny==\S+ sqlalchemy==\S+ alembic"):
        parse_trackers(["mlflow"])


# -- hyper-parameters

def test_config_is_flattened_into_scalars_that_fit_mlflow():
    flat = flatten_config(CONFIG)
    assert flat["spec.components.adapter.params.dim"] == 64
    assert flat["spec.components.adapter.site"] == '["clip.visual.blocks[1-12].attn"]'
    assert flat["spec.train.betas"] == "[0.9, 0.98]"
    assert flat["spec.train.views"] == "{}"
    assert flat["options.seed"] == "null" and flat["options.tiny"] is True and flat["options.sets"] == "[]"

    long = flatten_config({"classes": ["x" * 100] * 100})["classes"]
    assert len(long) == MAX_VALUE_LENGTH and long.endswith("...[cut from 10400 characters]")  # 100 * 102 + 99 * 2 + 2


def test_keys_mlflow_refuses_get_distinct_valid_stand_ins():
    assert param_key("spec.flow.logits.in") == "spec.flow.logits.in"
    odd = [param_key("lr/adapter (no decay)"), param_key("lr/adapter [no decay]"), param_key("a" * 300),
           param_key("a" * 299 + "b"), param_key("a//b")]
    assert len(set(odd)) == len(odd)
    for key in odd:
        assert len(key) <= MAX_KEY_LENGTH and all(c.isalnum() or c in "_-. :/" for c in key) and "//" not in key


# -- values read back

def test_tensorboard_and_mlflow_hold_what_was_logged(tmp_path, clean_mlflow, capfd):
    run_dir = tmp_path / "run"
    _run(["tensorboard", "mlflow"], run_dir)
    expected = _expected()

    scalars = read_tensorboard_scalars(run_dir)
    assert set(scalars) == set(expected)
    for tag, points in expected.items():
        assert [s for s, _ in scalars[tag]] == [s for s, _ in points], tag
        assert [v for _, v in scalars[tag]] == pytest.approx([v for _, v in points], rel=1e-6), tag
    hparams = read_tensorboard_hparams(run_dir)
    assert hparams["spec.components.adapter.params.dim"] == 64
    assert hparams["options.dataset"] == "demo"

    uri = f"sqlite:///{run_dir.resolve() / 'mlflow.db'}"
    (run,) = read_mlflow(uri)
    assert run.info.run_name == "run-a" and run.info.status == "FINISHED"
    for tag, points in expected.items():
        assert mlflow_history(uri, run.info.run_id, tag) == points, tag
    assert run.data.params["spec.components.adapter.params.dim"] == "64"
    assert run.data.params["spec.components.adapter.site"] == '["clip.visual.blocks[1-12].attn"]'
    assert run.data.params["options.epochs"] == "2"

    out, err = capfd.readouterr()
    assert "Creating initial MLflow database" not in out + err and "INFO" not in out + err
    assert not (Path.cwd() / "mlruns").exists()


def _synchronous(uri: str) -> int:
    from sqlalchemy import create_engine

    engine = create_engine(uri)
    with engine.connect() as connection:
        mode = connection.exec_driver_sql("PRAGMA synchronous").scalar()
    engine.dispose()
    return mode


def test_each_run_keeps_its_own_store_and_the_environment_is_untouched(tmp_path, clean_mlflow):
    shared = f"sqlite:///{tmp_path / 'shared.db'}"
    _run(["mlflow"], tmp_path / "a", "run-a", tracking_uri=shared)
    assert "MLFLOW_TRACKING_URI" not in os.environ
    _run(["mlflow"], tmp_path / "b", "run-b")  # after a run on another store, back to its own
    assert "MLFLOW_TRACKING_URI" not in os.environ

    assert [r.info.run_name for r in read_mlflow(shared)] == ["run-a"]
    assert not (tmp_path / "a" / "mlflow.db").exists()
    assert [r.info.run_name for r in read_mlflow(mlflow_uri(tmp_path / "b"))] == ["run-b"]
    # only the run directory's own store skips fsync; a store the user names keeps SQLite's default (FULL)
    assert _synchronous(mlflow_uri(tmp_path / "b")) == 0 and _synchronous(shared) == 2


def test_a_tracking_uri_mlflow_cannot_use_is_a_data_error(tmp_path, clean_mlflow):
    accelerator = _accelerator(["mlflow"], tmp_path)
    with pytest.raises(DataError, match=r"MLflow could not start with tracking URI .*plain-folder"):
        start_trackers(accelerator, ["mlflow"], tmp_path, "run", CONFIG, str(tmp_path / "plain-folder"))


def test_an_accelerator_that_would_drop_a_tracker_is_refused(tmp_path):
    accelerator = _accelerator(["tensorboard"], tmp_path)
    with pytest.raises(ValueError, match="log_with=names"):
        start_trackers(accelerator, ["tensorboard", "mlflow"], tmp_path, "run", CONFIG)


def test_a_tiny_demo_run_logs_to_tensorboard_and_mlflow(demo_root, tmp_path, clean_mlflow):
    """The whole path: `composer run --log-with tensorboard,mlflow`; every scalar read back from both stores
    equals what the run wrote to metrics.jsonl (epoch loss and top-1) and is there for every optimiser step."""
    import json

    from rich.console import Console

    from composer.train.run import Run, RunOptions

    options = RunOptions(dataset="demo", data_root=str(demo_root), tiny=True, epochs=2, max_steps=2, batch_size=4,
                         workers=0, out=str(tmp_path), seed=0, device="cpu", log_with=["tensorboard", "mlflow"],
                         sets=["inputs.video.size=32", "inputs.video.frames=4", "train.views={clips: 1, crops: 1}"])
    job = Run("specs/baselines/clip-adapter.yaml", options, console=Console(quiet=True))
    job.fit()
    job.finish()
    epochs = [json.loads(line) for line in (job.dir / "metrics.jsonl").read_text().splitlines()]
    board = read_tensorboard_scalars(job.dir)
    (run,) = read_mlflow(mlflow_uri(job.dir))
    store = {key: mlflow_history(mlflow_uri(job.dir), run.info.run_id, key) for key in board}
    for tag in ("loss", "loss/ce_loss", "grad_norm", "clips_per_s", "lr/adapter", "lr/adapter.no_decay"):
        assert [s for s, _ in board[tag]] == [1, 2, 3, 4], tag  # 2 epochs x 2 optimiser steps
        assert [s for s, _ in store[tag]] == [1, 2, 3, 4], tag
        assert [v for _, v in store[tag]] == pytest.approx([v for _, v in board[tag]], rel=1e-6), tag
    for tag, key in (("train/loss", "loss"), ("test/top1", None)):
        expected = [e[key] if key else e["test"]["top1"] for e in epochs]
        assert [v for _, v in board[tag]] == pytest.approx(expected, rel=1e-6), tag
        assert [v for _, v in store[tag]] == pytest.approx(expected, rel=1e-6), tag
    assert run.data.params["options.dataset"] == "demo" and run.data.params["spec.name"] == job.spec.name


def test_a_resumed_run_replaces_the_steps_logged_after_its_checkpoint(tmp_path):
    """An interrupted run logged steps 4 and 5 after its checkpoint at step 3; resumed from it, it logs them
    again. TensorBoard holds each step once, the resumed run's (before, steps 4 and 5 were there twice)."""
    run_dir = tmp_path / "run"
    first = _accelerator(["tensorboard"], run_dir)
    start_trackers(first, ["tensorboard"], run_dir, "run-a", CONFIG)
    for step in range(1, 6):
        first.log({"train/loss": float(step)}, step=step)
    first.end_training()
    resumed = _accelerator(["tensorboard"], run_dir)
    start_trackers(resumed, ["tensorboard"], run_dir, "run-a", CONFIG, resumed_step=3)
    for step in range(4, 7):
        resumed.log({"train/loss": 10.0 + step}, step=step)
    resumed.end_training()
    assert read_tensorboard_scalars(run_dir)["train/loss"] == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 14.0), (5, 15.0),
                                                               (6, 16.0)]


def test_a_resumed_run_continues_its_own_mlflow_run(demo_root, tmp_path, clean_mlflow, monkeypatch):
    """Budget: ~30 s (a tiny run of 3 one-step epochs, interrupted in the second, tested once). The MLflow run
    id is kept in the run directory; the resume logs into that run (steps 1 to 3 in one run, not a second
    run), and the changed --epochs, which MLflow cannot change on a logged parameter, does not stop it."""
    import json

    from rich.console import Console
    from test_resume import _killed_at

    from composer.rundir.resume import read_record, resumed_options
    from composer.train.run import Run, RunOptions

    options = RunOptions(dataset="demo", data_root=str(demo_root), tiny=True, epochs=2, max_steps=1, batch_size=4,
                         workers=0, out=str(tmp_path), seed=0, device="cpu", log_with=["mlflow"], eval_every=10,
                         sets=["inputs.video.size=32", "inputs.video.frames=4", "train.views={clips: 1, crops: 1}"])
    _killed_at(monkeypatch, epoch=1, batch=1)
    first = Run("specs/baselines/clip-adapter.yaml", options, console=Console(quiet=True))
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    first.accelerator.end_training()
    monkeypatch.undo()
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (started,) = read_mlflow(mlflow_uri(first.dir))
    again, changes = resumed_options(read_record(first.dir), {"epochs": 3}, ["epochs"])
    resumed = Run(None, again, resume=first.dir, changes=changes, console=Console(quiet=True))
    resumed.fit()
    resumed.finish()
    runs = read_mlflow(mlflow_uri(first.dir))
    assert [r.info.run_id for r in runs] == [started.info.run_id]  # one MLflow run, not one per attempt
    (run,) = runs
    assert json.loads((first.dir / "mlflow-run.json").read_text())["run_id"] == run.info.run_id
    # step 2 was logged before the interruption but not saved: the resume trains and logs it again
    assert [s for s, _ in mlflow_history(mlflow_uri(first.dir), run.info.run_id, "loss")] == [1, 2, 2, 3]
    epochs = [json.loads(line) for line in (first.dir / "metrics.jsonl").read_text().splitlines()]
    assert mlflow_history(mlflow_uri(first.dir), run.info.run_id, "train/loss") == \
        [(s, pytest.approx(e["loss"])) for s, e in zip((1, 2, 3), epochs)]
    assert run.data.params["options.epochs"] == "2"  # as the run started; run.json records the change
