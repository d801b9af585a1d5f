"""`composer run` on the demo set: the run directory, resume, bad runs stopped cleanly, eval, protocols."""

import hashlib
import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from rich.console import Console
from safetensors.torch import load_file

from composer.cli import main
from composer.errors import DataError
from composer.rundir.checkpoint_dir import latest_checkpoint
from composer.train import run as run_module
from composer.train.run import Run, RunOptions

SMALL = ["inputs.video.size=32", "inputs.video.frames=4", "train.views={clips: 2, crops: 1}"]


def options(demo_root, tmp_path, **kw) -> RunOptions:
    base = dict(dataset="demo", data_root=str(demo_root), tiny=True, epochs=1, max_steps=2, batch_size=8,
                workers=0, out=str(tmp_path / "runs"), sets=list(SMALL), seed=0)
    base.update(kw)
    return RunOptions(**base)


def quiet() -> Console:
    return Console(quiet=True)


def test_a_tiny_run_on_the_demo_writes_its_run_directory(demo_root, tmp_path):
    job = Run("specs/baselines/clip-adapter.yaml", options(demo_root, tmp_path), console=quiet())
    summary = job.fit()
    d = job.dir
    for name in ("spec.yaml", "run.json", "metrics.jsonl", "summary.json", "per_class.json", "confusion.json",
                 "bad_videos.txt", "checkpoints/latest", "checkpoints/best.safetensors", "learning-curves.png",
                 "confusion-test.png"):
        assert (d / name).exists(), name
    confusion = json.loads((d / "confusion.json").read_text())
    matrix = confusion["parts"]["test"]["matrix"]
    assert confusion["parts"]["test"]["classes"] == job.task.train.classes
    assert len(matrix) == 8 and all(len(r) == 8 for r in matrix)
    scores, labels = job.evaluator.scores["test"]
    assert sum(map(sum, matrix)) == 128 and [sum(r) for r in matrix] == torch.bincount(labels, minlength=8).tolist()
    assert sum(matrix[c][c] for c in range(8)) == round(summary["parts"]["test"]["top1"] * 128 / 100)
    assert (d / "bad_videos.txt").read_text() == ""
    test = summary["parts"]["test"]
    assert test["count"] == 128 and 0 <= test["top1"] <= 100 and "top5" in test and "mean_class" in test
    record = json.loads((d / "metrics.jsonl").read_text().splitlines()[0])
    assert record["epoch"] == 1 and record["clips"] == 16 and "top1" in record["test"]
    run_info = json.loads((d / "run.json").read_text())
    assert run_info["dataset"]["classes"] == 8 and run_info["protocol"] == "supervised"
    assert len(json.loads((d / "per_class.json").read_text())["test"]) == 8


def test_resume_after_an_interruption_ends_with_the_same_weights(demo_root, tmp_path, monkeypatch):
    straight = Run("specs/baselines/clip-adapter.yaml", options(demo_root, tmp_path / "a", epochs=2), console=quiet())
    straight.fit()
    original = run_module.train_epoch

    def interrupted(*args, **kwargs):
        if kwargs["epoch"] == 1:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(run_module, "train_epoch", interrupted)
    first = Run("specs/baselines/clip-adapter.yaml", options(demo_root, tmp_path / "b", epochs=2), console=quiet())
    with pytest.raises(KeyboardInterrupt):
        first.fit()
    monkeypatch.setattr(run_module, "train_epoch", original)
    resumed = Run(None, options(demo_root, tmp_path / "b", epochs=2), resume=first.dir, console=quiet())
    resumed.fit()
    a = load_file(latest_checkpoint(straight.dir / "checkpoints") / "weights.safetensors")
    b = load_file(latest_checkpoint(first.dir / "checkpoints") / "weights.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    lines = (first.dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(demo_root, tmp_path, monkeypatch):
    from composer.components.losses.cross_entropy_module import CrossEntropy
    from composer.rundir.checkpoint import load_trainable

    calls = {"n": 0}
    original = CrossEntropy.forward

    def sometimes_nan(self, logits, label):
        # counted: training steps (the memory model prices a step on the meta device, the pre-flight check
        # runs one batch without gradients)
        calls["n"] += logits.device.type != "meta" and torch.is_grad_enabled()
        loss = original(self, logits, label)
        return loss * float("nan") if calls["n"] > 2 else loss

    monkeypatch.setattr(CrossEntropy, "forward", sometimes_nan)
    job = Run("specs/baselines/clip-adapter.yaml", options(demo_root, tmp_path, epochs=3), console=quiet())
    with pytest.raises(DataError, match="the loss is nan at epoch 2"):
        job.fit()
    meta = load_trainable(job.model, job.dir / "checkpoints")
    assert meta == {"stage": "train", "epoch": 1, "classes": job.task.train.classes, "seed": 0, "size": "tiny",
                    "weights": "random"}


def test_an_unwritable_output_is_refused_before_training(demo_root, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(DataError, match="cannot write the run directory"):
        Run("specs/baselines/clip-adapter.yaml", options(demo_root, tmp_path, out=str(blocker / "runs")), console=quiet())


def test_cli_run_then_eval_a_checkpoint(demo_root, tmp_path):
    data = ["--dataset", "demo", "--data-root", str(demo_root), "--workers", "0", "--batch-size", "8"] + \
        [a for s in SMALL for a in ("--set", s)]
    result = CliRunner().invoke(main, ["run", "specs/baselines/clip-adapter.yaml", "--epochs", "1", "--size", "tiny",
                                       "--max-steps", "2", "--seed", "3", "--out", str(tmp_path / "runs")] + data)
    assert result.exit_code == 0, result.output
    assert "top-1" in result.output and "run directory" in result.output
    run_dir = next((tmp_path / "runs").iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    checkpoint = run_dir / "checkpoints" / "best.safetensors"
    # no --seed, no --size: the checkpoint's are used, so the numbers are the run's
    result = CliRunner().invoke(main, ["eval", "specs/baselines/clip-adapter.yaml", "--checkpoint", str(checkpoint)]
                                + data)
    assert result.exit_code == 0, result.output
    assert f"{summary['parts']['test']['top1']:.2f}" in result.output
    folder = Path(result.output.split("eval directory:")[1].strip())
    assert folder.parent == run_dir / "evals"  # by default next to the checkpoint's run
    record = json.loads((folder / "summary.json").read_text())
    assert record["seed"] == 3 and record["size"] == "tiny"
    assert record["checkpoint"]["sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert record["parts"]["test"]["top1"] == summary["parts"]["test"]["top1"]
    videos = record["predictions"]["test"]
    assert len(videos) == record["parts"]["test"]["count"] == summary["parts"]["test"]["count"]
    correct = sum(v["predicted"] == v["label"] for v in videos)
    assert 100.0 * correct / len(videos) == pytest.approx(record["parts"]["test"]["top1"])
    assert all(v["top5"][0]["class"] == v["predicted"] and len(v["top5"]) == 5 for v in videos)
    # the same seed given again changes nothing; another one is refused with both values
    again = CliRunner().invoke(main, ["eval", "specs/baselines/clip-adapter.yaml", "--checkpoint", str(checkpoint),
                                      "--seed", "3", "--out", str(tmp_path / "evals")] + data)
    assert again.exit_code == 0 and f"{summary['parts']['test']['top1']:.2f}" in again.output
    other = CliRunner().invoke(main, ["eval", "specs/baselines/clip-adapter.yaml", "--checkpoint", str(checkpoint),
                                      "--seed", "0", "--out", str(tmp_path / "evals")] + data)
    assert other.exit_code == 2 and "--seed 3" in other.output and "--seed 0" in other.output


def test_eval_lists_only_evaluation_options():
    text = CliRunner().invoke(main, ["eval", "--help"]).output
    assert "--checkpoint" in text and "--views" in text and "--seed" in text
    for training in ("--epochs", "--lr", "--max-steps", "--cache-features", "--resume"):
        assert training not in text


def test_eval_refuses_a_checkpoint_of_another_spec(demo_root, tmp_path):
    job = Run("specs/baselines/clip-adapter.yaml", options(demo_root, tmp_path), console=quiet())
    job.fit()
    result = CliRunner().invoke(main, ["eval", "specs/baselines/clip-lora.yaml", "--checkpoint",
                                       str(job.dir / "checkpoints"), "--dataset", "demo",
                                       "--data-root", str(demo_root), "--workers", "0",
                                       "--out", str(tmp_path / "eval")] + [a for s in SMALL for a in ("--set", s)])
    assert result.exit_code == 2 and "different model" in result.output


def test_base_to_novel_reports_both_and_the_harmonic_mean(demo_root, tmp_path):
    job = Run("specs/baselines/clip-adapter.yaml", options(demo_root, tmp_path, protocol="base-to-novel"),
              console=quiet())
    summary = job.fit()
    assert set(summary["parts"]) == {"base", "novel"} and "harmonic_mean" in summary
    assert summary["parts"]["novel"]["count"] == 64


def test_a_linear_head_cannot_be_tested_on_novel_classes(demo_root, tmp_path):
    with pytest.raises(DataError, match="linear_head"):
        Run("specs/baselines/clip-linear-probe.yaml", options(demo_root, tmp_path, protocol="base-to-novel"),
            console=quiet())


def test_few_shot_trains_on_k_per_class(demo_root, tmp_path):
    job = Run("specs/baselines/clip-adapter.yaml", options(demo_root, tmp_path, protocol="few-shot", shots=2,
                                                           max_steps=None), console=quiet())
    job.fit()
    record = json.loads((job.dir / "metrics.jsonl").read_text().splitlines()[0])
    assert record["clips"] == 16


def test_stages_run_in_order_and_each_trains_only_its_parts(demo_root, tmp_path):
    job = Run("specs/papers/ftp.yaml", options(demo_root, tmp_path, sets=["inputs.video.size=32",
                                                                          "inputs.video.frames=4",
                                                                          "train.views={clips: 1, crops: 1}"]),
              console=quiet())
    before = {n: p.detach().clone() for n, p in job.model.named_parameters() if "proc_category" in n}
    original_set = job.model.set_trainable
    snapshots = []

    def spy(parts):
        snapshots.append({n: p.detach().clone() for n, p in job.model.named_parameters() if "proc_category" in n})
        original_set(parts)

    job.model.set_trainable = spy
    job.fit()
    stages = [json.loads(line)["stage"] for line in (job.dir / "metrics.jsonl").read_text().splitlines()]
    assert stages == ["pretrain", "finetune"]
    after_pretrain, final = snapshots[1], {n: p for n, p in job.model.named_parameters() if "proc_category" in n}
    assert any(not torch.equal(before[n], after_pretrain[n]) for n in before)  # pretrain moved the processor
    assert all(torch.equal(after_pretrain[n], final[n]) for n in before)  # finetune did not


def test_cached_features_train_a_linear_probe_without_running_the_backbone_again(demo_root, tmp_path):
    cache = tmp_path / "features"
    job = Run("specs/baselines/clip-linear-probe.yaml",
              options(demo_root, tmp_path, epochs=2, max_steps=None, cache_features=str(cache)), console=quiet())
    calls = {"n": 0}
    tower = job.model.backbones["clip"].towers["visual"]
    original = tower.run
    tower.run = lambda *a, **k: calls.__setitem__("n", calls["n"] + 1) or original(*a, **k)
    job.fit()
    assert len(list(cache.glob("*.safetensors"))) == 192
    first = calls["n"]
    assert first >= 192  # every training clip once while caching, then only the test passes
    records = [json.loads(line) for line in (job.dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["clips"] for r in records] == [192, 192]
    # the folder is this run's: tiny backbones of another seed (other frozen weights) may not read it
    other = Run("specs/baselines/clip-linear-probe.yaml",
                options(demo_root, tmp_path / "other", max_steps=1, cache_features=str(cache), seed=5), console=quiet())
    with pytest.raises(DataError, match="holds features of another run \\(its weights differ\\)"):
        other.fit()


def test_cached_features_are_refused_when_the_backbone_trains(demo_root, tmp_path):
    with pytest.raises(DataError, match="--cache-features needs"):
        Run("specs/baselines/clip-adapter.yaml", options(demo_root, tmp_path, cache_features=str(tmp_path / "c")),
            console=quiet()).fit()


def test_a_spec_that_trains_nothing_is_tested_as_it_is(demo_root, tmp_path):
    """A zero-shot spec has nothing to optimise: `composer run` tests it without training (no epochs, no
    checkpoint), where an optimiser over no parameters used to end in a Python error."""
    job = Run("specs/baselines/clip-zero-shot.yaml", options(demo_root, tmp_path), console=quiet())
    summary = job.fit()
    assert summary["parts"]["test"]["count"] > 0 and 0 <= summary["parts"]["test"]["top1"] <= 100
    assert not any((job.dir / "checkpoints").glob("step-*"))
    assert (job.dir / "confusion-test.png").is_file() and not (job.dir / "learning-curves.png").exists()
    assert "trains nothing" in (job.dir / "run.log").read_text()
