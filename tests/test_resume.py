"""A run is its directory: resume from it alone (mid-epoch, bit-identical), refuse what contradicts its
record, keep its console output in run.log, one file mode for everything in it."""

import json
import os
import shutil
import stat
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from test_run import SMALL, options, quiet

from composer.cli import main
from composer.errors import DataError
from composer.rundir.resume import read_record, resumed_options
from composer.train import run as run_module
from composer.train import saving
from composer.train.run import Run

SPEC = "specs/baselines/clip-adapter.yaml"


def _killed_at(monkeypatch, epoch: int, batch: int) -> None:
    """Make the run raise KeyboardInterrupt once batch `batch` (1-based) of epoch `epoch` (0-based) trained."""
    original = run_module.train_epoch

    def interrupted(*args, **kwargs):
        if kwargs["epoch"] == epoch:
            follow = kwargs["on_step"]

            def on_step(step, *rest):
                if step == batch:
                    raise KeyboardInterrupt
                follow(step, *rest)

            kwargs["on_step"] = on_step
        return original(*args, **kwargs)

    monkeypatch.setattr(run_module, "train_epoch", interrupted)


def assert_same_trainable(a, b) -> None:
    """Bit-identical trainable tensors, name by name."""
    ours, theirs = a.trainable_state(), b.trainable_state()
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key


def test_a_run_killed_inside_an_epoch_resumes_from_its_directory_bit_identical(demo_root, tmp_path, monkeypatch):
    kw = dict(epochs=2, max_steps=4, save_every=2)
    straight = Run(SPEC, options(demo_root, tmp_path / "a", **kw), console=quiet())
    straight.fit()
    _killed_at(monkeypatch, epoch=1, batch=3)  # after the save at the run's step 6 (batch 2 of epoch 2)
    first = Run(SPEC, options(demo_root, tmp_path / "b", **kw), console=quiet())
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    monkeypatch.undo()
    resumed_with, changes = resumed_options(read_record(first.dir), {}, [])  # the directory alone
    assert changes == [] and resumed_with.save_every == 2 and resumed_with.epochs == 2
    resumed = Run(None, resumed_with, resume=first.dir, console=quiet())
    resumed.fit()
    assert_same_trainable(straight.model, resumed.model)
    records = [json.loads(line) for line in (first.dir / "metrics.jsonl").read_text().splitlines()]
    expected = [json.loads(line) for line in (straight.dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    assert [(r["loss"], r["clips"], r["test"]["top1"]) for r in records] == \
        [(r["loss"], r["clips"], r["test"]["top1"]) for r in expected]
    assert "resuming" in (first.dir / "run.log").read_text() and "epoch 2, batch 3" in (first.dir / "run.log").read_text()


@pytest.fixture(scope="module")
def stopped_once(demo_root, tmp_path_factory):
    """A run directory written by the command line and interrupted after its first epoch."""
    out = tmp_path_factory.mktemp("stopped") / "runs"
    args = ["run", SPEC, "--dataset", "demo", "--data-root", str(demo_root), "--size", "tiny", "--workers", "0",
            "--batch-size", "8", "--max-steps", "2", "--seed", "3", "--epochs", "2", "--out", str(out)]
    with pytest.MonkeyPatch.context() as monkeypatch:
        _killed_at(monkeypatch, epoch=1, batch=1)
        result = CliRunner().invoke(main, args + [a for s in SMALL for a in ("--set", s)])
    assert result.exit_code == 1 and "Aborted" in result.output, result.output  # click's answer to Ctrl-C
    return next(out.iterdir())


@pytest.fixture
def stopped_run(stopped_once, tmp_path):
    """A fresh copy of the interrupted run for each test."""
    return Path(shutil.copytree(stopped_once, tmp_path / stopped_once.name))


def test_the_readme_resume_command_works_as_written(stopped_run):
    result = CliRunner().invoke(main, ["run", "--resume", str(stopped_run)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (stopped_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2] and all(r["clips"] == 16 for r in records)  # batch 8, 2 steps
    log = (stopped_run / "run.log").read_text()
    assert "resuming" in log and "run directory" in log and "top-1" in log
    assert "train epoch 1/2: 2/2 loss" in log  # progress as plain lines
    mask = os.umask(0o022)
    os.umask(mask)
    for name in ("run.json", "run.log", "spec.yaml", "metrics.jsonl", "summary.json", "per_class.json",
                 "confusion.json", "bad_videos.txt"):  # one file mode (composer/files.py)
        assert stat.S_IMODE((stopped_run / name).stat().st_mode) == 0o666 & ~mask, name


def test_an_option_that_differs_from_the_record_is_refused_with_both_values(stopped_run):
    result = CliRunner().invoke(main, ["run", "--resume", str(stopped_run), "--epochs", "5"])
    assert result.exit_code == 2
    assert "--epochs 5 differs from the run's record (2); to change it on resume, add --override epochs" in result.output
    result = CliRunner().invoke(main, ["run", "--resume", str(stopped_run), "--seed", "4", "--override", "seed"])
    assert result.exit_code == 2 and "--override seed: that option cannot change on resume" in result.output
    result = CliRunner().invoke(main, ["run", "--resume", str(stopped_run), "--batch-size", "4"])
    assert result.exit_code == 2 and "--batch-size 4 differs from the run's record (8)" in result.output


def test_an_override_is_applied_and_recorded_with_the_step(stopped_run):
    result = CliRunner().invoke(main, ["run", "--resume", str(stopped_run), "--epochs", "3", "--override", "epochs",
                                       "--seed", "3", "--size", "tiny"])  # the same values are no conflict
    assert result.exit_code == 0, result.output
    record = json.loads((stopped_run / "run.json").read_text())
    assert record["options"]["epochs"] == 3
    assert record["changes"] == [{"option": "epochs", "from": 2, "to": 3,
                                  "from_step": {"stage": 0, "epoch": 1, "batch": 0, "step": 2}}]
    assert [json.loads(line)["epoch"] for line in (stopped_run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]


def test_another_spec_with_resume_is_refused(stopped_run):
    result = CliRunner().invoke(main, ["run", "specs/baselines/clip-lora.yaml", "--resume", str(stopped_run)])
    assert result.exit_code == 2 and "is not the spec" in result.output


def test_resume_refuses_a_folder_that_is_not_a_run_and_a_record_of_another_layout(stopped_run, tmp_path):
    result = CliRunner().invoke(main, ["run", "--resume", str(tmp_path)])
    assert result.exit_code == 2 and "is not a run directory (no run.json or spec.yaml)" in result.output
    record = json.loads((stopped_run / "run.json").read_text())
    record.pop("record_version")
    (stopped_run / "run.json").write_text(json.dumps(record))
    result = CliRunner().invoke(main, ["run", "--resume", str(stopped_run)])
    assert result.exit_code == 2 and "whose run record" in result.output and "differs" in result.output


def test_a_new_run_still_needs_a_dataset():
    result = CliRunner().invoke(main, ["run", SPEC])
    assert result.exit_code == 2 and "Missing option '--dataset'" in result.output


def test_a_nan_before_any_save_says_no_checkpoint_exists(demo_root, tmp_path, monkeypatch):
    from composer.components.losses.cross_entropy_module import CrossEntropy

    original = CrossEntropy.forward
    def nan_in_training(self, logits, label):  # the pre-flight check's batch (no gradients) stays finite
        return original(self, logits, label) * (float("nan") if torch.is_grad_enabled() else 1.0)

    monkeypatch.setattr(CrossEntropy, "forward", nan_in_training)
    job = Run(SPEC, options(demo_root, tmp_path), console=quiet())
    with pytest.raises(DataError, match="no checkpoint was saved before it"):
        job.fit()


def test_a_full_disk_during_a_save_stops_the_run_and_it_resumes_from_the_previous_checkpoint(demo_root, tmp_path,
                                                                                           monkeypatch):
    """The disk fills while epoch 2's state is written: a one-line error naming the intact previous
    checkpoint; resuming from the directory alone trains epoch 2 again to exactly the weights the stopped run
    had reached (its training was done when the save failed), with each epoch once in metrics.jsonl."""
    import errno

    import composer.files as files

    kw = dict(epochs=2, max_steps=2)
    real_save, real_write = saving.save_state, files._write_chunk

    def full_disk(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    def save_state(folder, model, optimizer, scheduler, progress, meta, **more):
        if progress["stage"] == 1:  # the end of epoch 2, the stage's last
            monkeypatch.setattr(files, "_write_chunk", full_disk)
        try:
            return real_save(folder, model, optimizer, scheduler, progress, meta, **more)
        finally:
            monkeypatch.setattr(files, "_write_chunk", real_write)

    monkeypatch.setattr(saving, "save_state", save_state)
    first = Run(SPEC, options(demo_root, tmp_path / "b", **kw), console=quiet())
    with pytest.raises(DataError, match="No space left on device.*intact and resumable"):
        first.fit()
    monkeypatch.undo()
    reached = {n: p.detach().clone() for n, p in first.model.trainable_state().items()}
    resumed = Run(None, resumed_options(read_record(first.dir), {}, [])[0], resume=first.dir, console=quiet())
    resumed.fit()
    again = resumed.model.trainable_state()
    assert reached.keys() == again.keys()
    for key in reached:
        assert torch.equal(reached[key], again[key]), key
    records = [json.loads(line) for line in (first.dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    assert "came after the checkpoint" in (first.dir / "run.log").read_text()
