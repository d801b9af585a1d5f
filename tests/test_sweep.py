"""`composer sweep`: grid expansion and refusals (meta device), the dry-run cost table over the shipped ablations,
and a real sweep on the demo set (shards, a failing variant, resume)."""

import csv
import json
import os
import signal
import statistics
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from conftest import ROOT, write

from composer.cli import main
from composer.compiler.report import measure
from composer.rundir.checkpoint_dir import latest_checkpoint
from composer.spec.load import load_spec
from composer.sweep import directory as sd
from composer.sweep import plan as sw

SMALL = ["inputs.video.size=32", "inputs.video.frames=4", "train.views={clips: 1, crops: 1}"]


def sweep(*args: str):
    return CliRunner().invoke(main, ["sweep", *args])


def test_values_split_on_commas_outside_brackets_and_quotes():
    assert sw.split_values("1e-3,[1, 2],{clips: 2, crops: 1},'a,b'") == ["1e-3", "[1, 2]", "{clips: 2, crops: 1}",
                                                                          "'a,b'"]
    assert sw.parse_grid("components.msta.params.dim=64,128") == ("components.msta.params.dim", ["64", "128"])


def test_the_grid_is_the_cartesian_product_applied_to_every_spec():
    grid = [("train.lr", ["1e-2", "1e-3"]), ("train.epochs", ["1", "2", "3"])]
    variants = sw.plan(["clip-linear-probe", "clip-adapter"], grid, ["train.batch_size=4"], [], tiny=True)
    assert len(variants) == 12 and len({v.name for v in variants}) == 12
    assert [v.spec for v in variants] == ["clip-linear-probe"] * 6 + ["clip-adapter"] * 6
    assert variants[4].sets == ("train.lr=1e-3", "train.epochs=2")
    assert variants[4].differs == "clip-linear-probe, train.lr=1e-3, train.epochs=2"
    for v in variants:
        spec = sw.load_variant(v, ["train.batch_size=4"], [], tiny=True)
        lr, epochs = (s.split("=")[1] for s in v.sets)
        assert (spec.train.lr, spec.train.epochs, spec.train.batch_size) == (float(lr), int(epochs), 4)
        assert spec.video_input().size == 64  # --size tiny, as the run will load it
    runs = sw.jobs(variants, [0, 1])
    assert len(runs) == 24 and [j.index for j in runs] == list(range(24))
    assert (runs[5].variant, runs[5].seed, runs[5].name) == (variants[2], 1, f"{variants[2].name}-seed1")
    assert [j.index for j in sw.shard(runs, (1, 5))] == [1, 6, 11, 16, 21]
    assert sum(len(sw.shard(runs, (i, 5))) for i in range(5)) == 24


@pytest.mark.parametrize("args, said", [
    (["--grid", "train.lrr=1,2"], ["<--grid train.lrr>", "unknown key 'lrr'"]),
    (["--grid", "train.lr=1e-3,abc"], ["<--grid train.lr>", "valid number", "train.lr=abc"]),
    (["--grid", "train.lr="], ["--grid train.lr=", "empty value"]),
    (["--grid", "train.lr"], ["--grid train.lr", "PATH=V1,V2"]),
    (["--grid", "train.lr=1e-3,0.001"], ["resolve to the same spec", "train.lr=1e-3", "train.lr=0.001"]),
    (["--grid", "train.lr=1e-3", "--grid", "train.lr=1e-2"], ["--grid train.lr is given twice"]),
    (["--grid", "train.lr=1e-3,1e-2", "--lr", "0.1"], ["--grid train.lr", "--lr"]),
    (["--grid", "train.seed=1,2", "--seeds", "0,1"], ["--grid train.seed", "--seeds"]),
    (["--grid", "train.lr=1e-3", "--set", "train.lr=0.1"], ["--grid train.lr", "--set train.lr=0.1"]),
    (["--shard", "2/2", "--out", "OUT"], ["--shard 2/2"]),
    (["--shard", "0/2"], ["--shard needs --out"]),
    (["--seeds", "0,x"], ["--seeds 0,x"]),
], ids=["unknown-key", "wrong-type", "empty", "no-values", "same-spec", "key-twice", "shadowed-by-lr",
        "shadowed-by-seeds", "set-and-grid", "bad-shard", "shard-without-out", "bad-seeds"])
def test_bad_input_is_refused_before_anything_runs(tmp_path, args, said):
    out = tmp_path / "sweep"
    args = [str(out) if a == "OUT" else a for a in args]
    result = sweep("clip-linear-probe", "--size", "tiny", "--dataset", "demo", *args)
    assert result.exit_code == 2, result.output
    assert all(s in result.output for s in said), result.output
    assert "Traceback" not in result.output and not out.exists()


def test_two_specs_that_differ_only_in_name_are_one_variant(tmp_path):
    a = write(tmp_path, "a.yaml", "extends: clip-linear-probe\ndescription: one\n")
    b = write(tmp_path, "b.yaml", "extends: clip-linear-probe\ndescription: two\n")
    result = sweep(str(a), str(b), "--size", "tiny", "--dry-run")
    assert result.exit_code == 2 and "resolve to the same spec" in result.output


def test_dry_run_over_the_shipped_msta_ablations_prints_their_costs():
    paths = sorted((ROOT / "specs" / "papers" / "ablations").glob("msta-*.yaml"))
    result = sweep(*map(str, paths), "--dry-run", "--batch-size", "4", "--precision", "bf16")
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.startswith("| msta-")]
    assert len(rows) == len(paths) == 3
    assert "peak memory (batch 4, bf16)" in result.output
    for path, row in zip(paths, rows):
        cells = [c.strip() for c in row.strip("|").split("|")]
        counted = measure(path)  # what `composer report` counts for the same file
        assert cells[0] == path.stem
        assert cells[2] == f"{counted['trainable'] / 1e6:,.2f}M" and cells[3] == f"{counted['total'] / 1e6:,.2f}M"
        assert cells[4] == f"{counted['gflops']:.2f}" and cells[5].endswith("GiB")


def test_over_seeds_a_metric_is_the_mean_and_sample_std_of_the_finished_runs(tmp_path):
    (variant,) = sw.plan(["clip-linear-probe"], [], [], [], tiny=True)
    runs = sw.jobs([variant], [0, 1, 2])
    (tmp_path / "variants").mkdir()
    top1 = {0: 70.0, 1: 72.5}
    for job in runs:
        done = job.seed in top1
        (tmp_path / "variants" / f"{job.name}.json").write_text(json.dumps(
            {"status": "done" if done else "failed", "metrics": {"test top-1": top1[job.seed]} if done else {},
             "seconds": 10.0, "run_dir": f"runs/{job.name}/r", "log": f"logs/{job.name}.log",
             "error": "error: out of memory", "trainable_params": 4104, "gflops": 0.03}))
    rows, columns = sd.results(tmp_path, runs)
    assert columns == ["test top-1"] and rows[0]["status"] == "failed (1 of 3)" and rows[0]["n"] == 2
    table = sd.markdown(rows, columns, seeds=True)
    mean, std = statistics.mean(top1.values()), statistics.stdev(top1.values())
    assert f"| {mean:.2f} ± {std:.2f} |" in table and "| 2/3 |" in table and "out of memory" in table
    row = next(csv.DictReader(sd.csv_text(rows, columns).splitlines()))
    assert float(row["test top-1"]) == pytest.approx(mean) and float(row["test top-1 std"]) == pytest.approx(std)


def test_a_sweep_on_the_demo_shards_records_a_failure_goes_on_and_resumes(demo_root, tmp_path):
    out = tmp_path / "sweep"
    # three specs, each with the grid's one value: fp16 cannot train on the CPU, so that run fails fast in its own
    # process; the other two train
    fp16 = write(tmp_path, "fp16.yaml", "extends: clip-linear-probe\ntrain:\n  precision: fp16\n")
    decay_spec = write(tmp_path, "decay.yaml", "extends: clip-linear-probe\ntrain:\n  weight_decay: 0.05\n")
    args = [str(fp16), "clip-linear-probe", str(decay_spec), "--grid", "train.lr=1e-2", "--device", "cpu",
            "--dataset", "demo", "--data-root", str(demo_root), "--size", "tiny", "--epochs", "1", "--max-steps", "1",
            "--batch-size", "8", "--workers", "0", "--log-with", "none", "--out", str(out)]
    args += [a for s in SMALL for a in ("--set", s)]
    names = ["fp16-lr=1e-2", "clip-linear-probe-lr=1e-2", "decay-lr=1e-2"]
    first = sweep(*args, "--shard", "0/2")  # runs 0 and 2: the failure first, then the sweep goes on
    assert first.exit_code == 1, first.output
    assert f"[1/2] {names[0]}: failed" in first.output and f"[2/2] {names[2]}: done" in first.output
    second = sweep(*args, "--shard", "1/2")  # another job of an array, into the same directory
    assert second.exit_code == 0, second.output

    rows = list(csv.DictReader((out / "results.csv").read_text(encoding="utf-8").splitlines()))
    assert [r["variant"] for r in rows] == names
    assert [r["differs"] for r in rows] == [f"{n.split('-lr')[0]}, train.lr=1e-2" for n in names]
    assert [r["status"] for r in rows] == ["failed", "done", "done"]
    assert "fp16 training needs a GPU" in rows[0]["error"] and "logs/fp16-lr=1e-2.log" in rows[0]["error"]
    for row, decay in zip(rows[1:], (0.0, 0.05)):
        (run_dir,) = row["run_dirs"].split()
        assert (out / run_dir).parent == out / "runs" / row["variant"]
        summary = json.loads((out / run_dir / "summary.json").read_text())
        assert float(row["test top-1"]) == summary["parts"]["test"]["top1"]
        assert float(row["test top-5"]) == summary["parts"]["test"]["top5"]
        ran = load_spec(out / run_dir / "spec.yaml")  # the grid's value and the variant's own spec reached the run
        assert (ran.train.lr, ran.train.weight_decay) == (1e-2, decay)
        assert int(row["trainable_params"]) == 8 * 512 + 8  # a linear head on the tiny CLIP's 512 features, 8 classes
    record = json.loads((out / "sweep.json").read_text())
    assert [r["status"] for r in record["runs"]] == ["failed", "done", "done"]
    assert record["runs"][1]["sets"] == ["train.lr=1e-2"] and record["runs"][2]["spec"] == str(decay_spec)
    command = json.loads((out / "variants" / f"{names[1]}.json").read_text())["command"]
    for given in (["--log-with", "none"], ["--device", "cpu"], ["--size", "tiny"], ["--set", "train.lr=1e-2"]):
        assert any(command[i:i + 2] == given for i in range(len(command))), (given, command)
    table = (out / "results.md").read_text(encoding="utf-8")
    assert [line.split("|")[1].strip() for line in table.splitlines()[2:5]] == names

    # the same command again: the finished runs are skipped (their directories untouched), the failed one reruns
    before = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*") if "fp16" not in str(p)}
    again = sweep(*args)
    assert again.exit_code == 1, again.output
    assert again.output.count("done before, skipped") == 2 and f"[1/3] {names[0]}: failed" in again.output
    assert {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*") if "fp16" not in str(p)} == before
    # fp16 on the CPU is refused before a run directory exists, the first time and on the rerun alike
    assert not any((out / "runs" / names[0]).iterdir())

    other = sweep(*[a if a != "train.lr=1e-2" else "train.lr=3e-3" for a in args])
    assert other.exit_code == 2 and "holds another sweep" in other.output


def test_the_table_takes_each_test_part_and_the_harmonic_mean_from_a_summary():
    summary = {"protocol": "base-to-novel", "parts": {"base": {"top1": 80.0, "top5": 95.0, "count": 4},
                                                      "novel": {"top1": 60.0, "count": 4}}, "harmonic_mean": 68.57}
    assert sd.summary_metrics(summary) == {"base top-1": 80.0, "base top-5": 95.0, "novel top-1": 60.0,
                                           "harmonic mean": 68.57}


def test_a_folder_that_is_not_a_sweep_directory_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = sweep("clip-linear-probe", "--size", "tiny", "--dataset", "demo", "--out", str(tmp_path))
    assert result.exit_code == 2 and "not a sweep directory" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("document", ["[]", '{"plan": 3}', "[" * 100_000 + "]" * 100_000, "nul"])
def test_a_damaged_sweep_record_is_refused_in_one_line(tmp_path, document):
    (tmp_path / "sweep.json").write_text(document)
    result = sweep("clip-linear-probe", "--size", "tiny", "--dataset", "demo", "--out", str(tmp_path))
    assert result.exit_code == 2, result.output  # a traceback exits 1
    assert "sweep.json" in result.output and "give another --out" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("record", [[1, 2], {"status": "done"}, {"status": "done", "seconds": "10", "run_dir": "r"},
                                    {"status": 3}, {"status": "done", "seconds": 1, "run_dir": "r", "metrics": [1]},
                                    {"status": "done", "seconds": 1, "run_dir": "r", "metrics": {"top-1": "70"}},
                                    {"status": "failed"}, "[" * 100_000 + "]" * 100_000])
def test_a_damaged_job_record_counts_as_not_run_and_the_table_is_still_made(tmp_path, record):
    """A job's record that is not in the form the sweep writes is not believed: the job reads as pending
    (running the sweep again runs or resumes it), never as a traceback or a number it does not hold."""
    (variant,) = sw.plan(["clip-linear-probe"], [], [], [], tiny=True)
    (job,) = sw.jobs([variant], [None])
    (tmp_path / "variants").mkdir()
    (tmp_path / "variants" / f"{job.name}.json").write_text(record if isinstance(record, str) else json.dumps(record))
    rows, columns = sd.results(tmp_path, [job])
    status = "failed" if record == {"status": "failed"} else "pending"
    assert rows[0]["status"] == status and rows[0]["n"] == 0 and columns == []
    sd.write_tables(tmp_path, {"plan": 1}, [job], seeds=False)
    assert sd.finished(tmp_path, job) is False


def test_an_interrupted_run_is_resumed_from_its_run_directory_by_the_same_command(demo_root, tmp_path):
    """Budget: ~40 s (one tiny run of 3 one-step epochs, killed after its first checkpoint, then resumed).
    The sweep is killed with its run (as a cluster's preemption does) once the run has saved epoch 1; the
    same command again resumes that run directory (`composer run --resume`) instead of starting afresh."""
    out = tmp_path / "sweep"
    args = ["clip-linear-probe", "--device", "cpu", "--dataset", "demo", "--data-root", str(demo_root),
            "--size", "tiny", "--epochs", "3", "--max-steps", "1", "--batch-size", "8", "--workers", "0", "--log-with", "none",
            "--out", str(out)] + [a for s in SMALL for a in ("--set", s)]
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1")
    process = subprocess.Popen([sys.executable, "-m", "composer.cli", "sweep", *args], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    runs = out / "runs" / "clip-linear-probe"
    deadline = time.monotonic() + 300
    while not any(latest_checkpoint(d / "checkpoints") for d in (runs.iterdir() if runs.is_dir() else [])):
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before its first checkpoint"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the sweep and its run
    process.wait()
    (run_dir,) = runs.iterdir()
    assert not (run_dir / "summary.json").exists(), "the run finished before it was killed"
    assert json.loads((out / "variants" / "clip-linear-probe.json").read_text())["status"] == "running"

    again = sweep(*args)
    assert again.exit_code == 0, again.output
    assert f"[1/1] clip-linear-probe: resuming (clip-linear-probe) from runs/clip-linear-probe/{run_dir.name}" \
        in again.output
    assert list(runs.iterdir()) == [run_dir]  # no second run directory
    assert "resuming" in (run_dir / "run.log").read_text()
    epochs = [json.loads(line)["epoch"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert epochs[0] == 1 and epochs[-1] == 3 and len(set(epochs)) == len(epochs)  # epoch 1 was not trained again
    record = json.loads((out / "variants" / "clip-linear-probe.json").read_text())
    assert record["status"] == "done" and record["run_dir"] == f"runs/clip-linear-probe/{run_dir.name}"
    assert record["command"][2:4] == ["run", "--resume"]
