"""`composer sweep --search optuna`: search spaces, the storage check, and two processes sharing one study
on one SQLite file, with Optuna's median pruner stopping the trials that fall behind.

Budget: the two-process study runs 6 tiny trials (ViCLIP with a rank-4 LoRA on q/k/v, demo weights, 4 frames of
64 px, 2 steps an epoch, no loader workers; good trials train 2 epochs, bad ones are given 8 and pruned after
their first or second): under a minute and a half on 2 cores; the rest is parsing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from click.testing import CliRunner

from composer.cli import main
from composer.sweep.directory import SweepError
from composer.sweep.search import Dimension, parse_space

ROOT = Path(__file__).resolve().parents[1]
# ViCLIP's demo weights classify the demo zero-shot (61.7% test top-1): an lr that changes nothing keeps that
# after an epoch, while lr 1 wrecks the LoRA'd tower (12-15%), so the median rule must prune every BAD trial.
# A stop reaches a run within a second of the epoch's row, and takes effect after its next optimiser step: a bad
# trial with one epoch left could finish first (CI saw that), so bad trials get 8 epochs and cannot outrun it.
GOOD, BAD = {"train.lr": 1e-9, "train.epochs": 2}, {"train.lr": 1.0, "train.epochs": 8}


def test_search_spaces_parse_and_bad_ones_are_refused_with_their_column():
    assert parse_space("train.lr=log(1e-5,1e-2)") == Dimension("train.lr", "log", 1e-5, 1e-2, log=True)
    assert parse_space("components.lora.params.r=int(4,64,log)") == Dimension("components.lora.params.r", "int", 4, 64,
                                                                            log=True)
    assert parse_space("x.y=choice(a,[1, 2],b)").choices == ("a", "[1, 2]", "b")
    for text, message in (("train.lr=lgo(1e-5,1e-2)", "column 10: unknown kind 'lgo'"),
                          ("train.lr=log(1e-5)", "column 14: log(LOW,HIGH) takes two bounds"),
                          ("train.lr=log(0,1)", "a log scale needs LOW > 0"),
                          ("train.lr=float(2,1)", "LOW must be below HIGH"),
                          ("train.lr=float(1,nan)", "is not a finite number"),
                          ("train.lr=int(1.5,4)", "'1.5' is not an integer"),
                          ("x=choice(a,a)", "2 to 1000 different"),
                          ("train.lr=1e-3", "column 10: expected KIND(...)"),
                          ("1x=float(0,1)", "column 1: '1x' is not a spec path")):
        with pytest.raises(SweepError, match=message.replace("(", r"\(").replace(")", r"\)")):
            parse_space(text)


def test_a_storage_that_cannot_be_opened_is_refused_before_any_trial(tmp_path):
    result = CliRunner().invoke(main, [
        "sweep", "clip-linear-probe", "--search", "optuna", "--trials", "2", "--grid", "train.lr=log(1e-4,1e-2)",
        "--storage", "nosuchdb://x", "--dataset", "demo", "--size", "tiny", "--out", str(tmp_path / "s")])
    assert result.exit_code == 2, result.output
    assert "cannot open the Optuna storage nosuchdb://x" in result.output
    assert not (tmp_path / "s" / "runs").exists()
    result = CliRunner().invoke(main, ["sweep", "clip-linear-probe", "--search", "optuna", "--trials", "2",
                                       "--grid", "train.nope=log(1e-4,1e-2)", "--dataset", "demo", "--size", "tiny",
                                       "--out", str(tmp_path / "t")])
    assert result.exit_code == 2 and "nope" in result.output and not (tmp_path / "t").exists()


def test_two_processes_share_one_study_and_the_median_rule_prunes(tmp_path):
    """Optuna's own API makes the study and queues the trials' values (2 good, then 4 bad), so which trial is
    pruned does not depend on the sampler; two `composer sweep` processes join it and run all 6."""
    out, name = tmp_path / "sweep", "shared"
    out.mkdir()
    storage = f"sqlite:///{out / 'study.db'}"
    study = optuna.create_study(storage=storage, study_name=name, direction="maximize")
    for params in (GOOD, GOOD, BAD, BAD, BAD, BAD):
        study.enqueue_trial(params)
    command = [sys.executable, "-m", "composer.cli", "sweep", "viclip-lora", "--search", "optuna", "--trials", "6",
               "--prune", "median", "--grid", "train.lr=log(1e-12,10)", "--grid", "train.epochs=int(2,8)",
               "--study", name, "--storage", storage,
               "--set", "components.lora.site=viclip.visual.blocks[*].attn.qkv", "--set", "components.lora.params.r=4",
               "--set", "inputs.video.frames=4", "--set", "train.warmup_epochs=0", "--set", "train.views.clips=1",
               "--set", "train.views.crops=1", "--dataset", "demo", "--size", "tiny", "--weights", "demo",
               "--batch-size", "16", "--max-steps", "2", "--workers", "0", "--log-with", "none",
               "--out", str(out)]
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")  # one core each
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
                 for _ in range(2)]
    logs = [p.communicate(timeout=600)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], logs
    trials = optuna.load_study(study_name=name, storage=storage).get_trials()
    states = [t.state.name for t in trials]
    assert len(trials) == 6 and states[:2] == ["COMPLETE", "COMPLETE"], states
    # the median rule needs both good trials done; the first bad one starts when one is, the other ends soon after
    assert states[2:] == ["PRUNED"] * 4, states
    assert all(t.params == BAD for t in trials[2:]) and all(t.params == GOOD for t in trials[:2])
    assert all(re.search(r"^trial \d+ \(", log, re.M) for log in logs), logs  # both processes ran trials
    assert "pruned after epoch 1 by the median rule" in "".join(logs)
    results = (out / "results.md").read_text(encoding="utf-8")
    assert "## Optuna study shared" in results and "train.lr=1e-09" in results and "| pruned |" in results
    for t in trials:
        record = json.loads((out / "variants" / f"trial-{t.number:04d}.json").read_text(encoding="utf-8"))
        assert record["status"] == t.state.name.lower().replace("complete", "done")
        if record["status"] == "pruned":  # the stop is the preemption signal: the run saved and said so
            assert record["exit_code"] == 75
            assert (out / record["run_dir"] / "checkpoints").is_dir()


def test_a_trial_handed_to_two_processes_runs_in_one(tmp_path, monkeypatch):
    """SQLite lets two processes that ask at the same moment pop one queued trial; the second to finish then
    could not tell it ("Cannot tell a COMPLETE trial", seen in CI). Here another process has claimed trial 0
    and the study hands it to this one too: this one leaves it and runs the next. A told trial's claim is
    removed, so another study in the directory starts clean."""
    from composer.sweep import search

    class Recording:  # the study, with the trials it hands out
        def __init__(self, study):
            self.study, self.given = study, []

        def ask(self):
            self.given.append(self.study.ask())
            return self.given[-1]

        def __getattr__(self, name):
            return getattr(self.study, name)

    ran = []

    def run_job(folder, job, *args, **kw):
        ran.append(job.index)
        return {"status": "done", "metrics": {"test top-1": 50.0}, "seconds": 0.0}

    monkeypatch.setattr(search, "run_job", run_job)
    monkeypatch.setattr(search, "write_results", lambda *args: None)
    study = Recording(optuna.create_study(study_name="s", direction="maximize"))
    assert search.claimed(tmp_path, "s", 0)  # the other process popped trial 0 first and claimed it
    says = []
    search.run_search(tmp_path, "clip-linear-probe", [parse_space("train.lr=log(1e-4,1e-2)")], 2, study,
                      "test top-1", "none", [], [], [], True, {}, says.append)
    assert [t.number for t in study.given] == [0, 1] and ran == [1]
    assert [t.state.name for t in study.get_trials()] == ["RUNNING", "COMPLETE"]  # trial 0 is the other's to tell
    assert any("trial 0 was handed to another process" in line for line in says), says
    assert [p.name.split("-")[1] for p in (tmp_path / "variants").glob("*.claim")] == ["0000"]  # 1's is gone
    assert not search.claimed(tmp_path, "s", 0) and search.claimed(tmp_path, "another study", 0)
