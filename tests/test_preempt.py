"""A cluster's signal (SIGUSR1, SIGTERM) stops a run after the current optimiser step with its state saved, and
the run resumes to the weights an uninterrupted run has; a second signal during that save changes nothing;
`composer run` exits 75 and, with --requeue under SLURM, asks `scontrol requeue` (a stub on PATH here).

Budget: about 45 s (three tiny demo runs of 4-8 steps at 32 px, two of them through the command line)."""

import json
import os
import signal
import stat

import pytest
from click.testing import CliRunner
from test_resume import assert_same_trainable
from test_run import SMALL, options, quiet

from composer.cli import main
from composer.rundir.checkpoint_dir import latest_checkpoint, verify_checkpoint
from composer.rundir.resume import read_record, resumed_options
from composer.train import run as run_module
from composer.train import saving
from composer.train.preempt import EXIT_PREEMPTED, Preempted, requeue
from composer.train.run import Run

SPEC = "specs/baselines/clip-adapter.yaml"


@pytest.fixture(autouse=True)
def handlers_kept():
    """The signal handlers as they were before each test (a requeue leaves the signals ignored)."""
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGUSR1)}
    yield
    for s, handler in previous.items():
        signal.signal(s, handler)


def _signal_at(monkeypatch, epoch: int, batch: int, sig: signal.Signals) -> None:
    """Send `sig` to this process once batch `batch` (1-based) of epoch `epoch` (0-based) trained."""
    original = run_module.train_epoch

    def signalled(*args, **kwargs):
        if kwargs["epoch"] == epoch:
            follow = kwargs["on_step"]

            def on_step(step, *rest):
                follow(step, *rest)
                if step == batch:
                    os.kill(os.getpid(), sig)

            kwargs["on_step"] = on_step
        return original(*args, **kwargs)

    monkeypatch.setattr(run_module, "train_epoch", signalled)


def _signal_during_save(monkeypatch, number: int, sig: signal.Signals) -> list[int]:
    """Send `sig` as state save `number` (1-based) starts writing its files; returns the list every save
    appends its number to."""
    original = saving.save_state
    saves = []

    def interrupted(*args, **kwargs):
        saves.append(len(saves) + 1)
        if saves[-1] == number:
            os.kill(os.getpid(), sig)
        return original(*args, **kwargs)

    monkeypatch.setattr(saving, "save_state", interrupted)
    return saves


def test_a_signal_inside_an_epoch_saves_there_and_the_run_resumes_bit_identical(demo_root, tmp_path, monkeypatch):
    kw = dict(epochs=2, max_steps=4)
    straight = Run(SPEC, options(demo_root, tmp_path / "a", **kw), console=quiet())
    straight.fit()
    _signal_at(monkeypatch, epoch=1, batch=2, sig=signal.SIGUSR1)
    first = Run(SPEC, options(demo_root, tmp_path / "b", **kw), console=quiet())
    saves = _signal_during_save(monkeypatch, 2, signal.SIGTERM)  # a second signal while the state is written
    with pytest.raises(Preempted, match="after optimiser step 6"):
        first.fit()
    monkeypatch.undo()
    assert saves == [1, 2]  # epoch 1's end, then the signal's save at batch 2 of epoch 2
    saved = latest_checkpoint(first.dir / "checkpoints")
    verify_checkpoint(saved)  # whole and verified despite the signal during its save
    progress = json.loads((saved / "state.json").read_text())["progress"]
    assert progress["epoch"] == 1 and progress["position"]["batches"] == 2
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the run's handlers are gone with it
    resumed_with, _ = resumed_options(read_record(first.dir), {}, [])
    resumed = Run(None, resumed_with, resume=first.dir, console=quiet())
    resumed.fit()
    assert_same_trainable(straight.model, resumed.model)


def _stub_scontrol(tmp_path, code: int = 0):
    """An `scontrol` on PATH that records its arguments."""
    folder = tmp_path / "bin"
    folder.mkdir()
    stub = folder / "scontrol"
    stub.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path / 'scontrol.log'}\nexit {code}\n")
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    return folder


def test_composer_run_exits_75_says_how_to_continue_and_requeues_under_slurm(demo_root, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{_stub_scontrol(tmp_path)}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    _signal_at(monkeypatch, epoch=0, batch=1, sig=signal.SIGTERM)
    out = tmp_path / "runs"
    args = ["run", SPEC, "--dataset", "demo", "--data-root", str(demo_root), "--size", "tiny", "--epochs", "1",
            "--max-steps", "3", "--workers", "0", "--out", str(out), "--requeue", "--log-with", "none",
            *[a for s in SMALL for a in ("--set", s)]]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == EXIT_PREEMPTED, result.output
    (run_dir,) = list(out.iterdir())
    assert f"composer run --resume {run_dir}" in result.output and "requeued SLURM job 4242" in result.output
    assert (tmp_path / "scontrol.log").read_text() == "requeue 4242\n"
    assert "requeued SLURM job 4242" in (run_dir / "run.log").read_text()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN  # SLURM signals the job it requeues
    monkeypatch.undo()
    again = CliRunner().invoke(main, ["run", "--resume", str(run_dir), "--requeue"])
    assert again.exit_code == 0, again.output
    assert (run_dir / "summary.json").is_file()


def test_a_failing_scontrol_is_said_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{_stub_scontrol(tmp_path, code=1)}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    said = requeue()
    assert said.startswith("--requeue: scontrol requeue 4242 failed")
    assert (tmp_path / "scontrol.log").read_text() == "requeue 4242\n"


def test_requeue_outside_slurm_says_so(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    assert "not under SLURM" in requeue()
