"""Every option of a command is checked before any work starts: a value that means nothing is refused with the
option's name and exit status 2 (never a traceback, never a run folder); a resource a user can size (workers,
views, classes, sweep runs, overrides) has a stated bound (docs/language.md, "Limits").

Budget: about 20 s on a busy 2-core machine (the one test that builds a run constructs it on the demo, no
training); every refusal is answered before a model is built."""

import json
import os
import time

import pytest
from click.testing import CliRunner
from conftest import write

from composer.cli import main
from composer.errors import DataError, SpecError
from composer.spec import limits

SPEC = "specs/baselines/clip-adapter.yaml"
FAST_S = 5.0  # a refusal is answered before any model is built: well under this on a busy machine


def invoke(*args: str):
    start = time.perf_counter()
    result = CliRunner().invoke(main, list(args))
    return result, time.perf_counter() - start


def refused(*args: str, says: str):
    """Exit 2, no traceback, the message, fast."""
    result, seconds = invoke(*args)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert says in result.output, result.output
    assert seconds < FAST_S, f"{seconds:.1f} s"
    return result.output


# ---------------------------------------------------------------- run options
@pytest.mark.parametrize("option, value, says", [
    ("--lr", "nan", "'nan' is not a finite number"),
    ("--lr", "inf", "'inf' is not a finite number"),
    ("--lr", "-1", "--lr"),
    ("--lr", "0", "--lr"),  # the spec refuses a learning rate of 0 too: it trains nothing
    ("--epochs", "-1", "--epochs"),
    ("--epochs", "0", "--epochs"),  # was: the spec's epochs, while run.json recorded 0
    ("--batch-size", "0", "--batch-size"),  # was: the spec's batch size, while run.json recorded 0
    ("--max-steps", "0", "--max-steps"),  # was: no limit at all
    ("--max-steps", "-5", "--max-steps"),
    ("--seed", str(2**63), "--seed"),
    ("--seed", "1_000_000_000_000_000_000_000", "--seed"),
    ("--workers", "-3", "--workers"),
    ("--workers", str(limits.MAX_WORKERS + 1), "--workers"),
    ("--shots", "-1", "--shots"),
], ids=lambda v: str(v)[:12])
def test_run_options_that_mean_nothing_are_refused_before_a_run_folder(tmp_path, option, value, says):
    out = tmp_path / "runs"
    refused("run", SPEC, "--dataset", "demo", "--size", "tiny", "--out", str(out), option, value, says=says)
    assert not out.exists()


@pytest.mark.parametrize("field, value, flag", [
    ("epochs", -1, "--epochs"), ("epochs", 0, "--epochs"), ("batch_size", 0, "--batch-size"),
    ("lr", float("nan"), "--lr"), ("lr", 0.0, "--lr"), ("lr", -1e-3, "--lr"), ("max_steps", 0, "--max-steps"),
    ("seed", 2**63, "--seed"), ("workers", -1, "--workers"), ("eval_every", 0, "--eval-every"),
    ("save_every", 0, "--save-every"), ("progress_every", -2, "--progress-every"), ("out", "", "--out"),
    ("data_root", "", "--data-root"), ("tracking_uri", "", "--tracking-uri"), ("epochs", "3", "--epochs"),
    ("shots", 2, "--shots"), ("eval_dataset", "hmdb51", "--eval-dataset"),
])
def test_the_same_checks_meet_options_that_do_not_come_from_click(tmp_path, field, value, flag):
    """RunOptions built in Python or read back from run.json (a resume) meet the checks too."""
    from composer.train.run import Run, RunOptions

    options = RunOptions(**{"dataset": "demo", "tiny": True, "out": str(tmp_path / "runs"), field: value})
    with pytest.raises(DataError, match=flag):
        Run(SPEC, options)
    assert not (tmp_path / "runs").exists()


def test_a_resume_whose_record_says_negative_epochs_is_refused(tmp_path):
    """Was: nothing trained, the untrained model tested, exit 0 and a model card that read like a finished run."""
    from composer.rundir.resume import RECORD_VERSION
    from composer.train.run import RunOptions
    from composer.version import composer_version

    run_dir = tmp_path / "runs" / "clip-adapter-1"
    run_dir.mkdir(parents=True)
    (run_dir / "spec.yaml").write_text(open(SPEC).read())
    record = {"composer": composer_version(), "record_version": RECORD_VERSION,
              "options": RunOptions(dataset="demo", tiny=True, epochs=-1, out=str(tmp_path / "runs")).__dict__}
    (run_dir / "run.json").write_text(json.dumps(record))
    before = sorted(p.name for p in run_dir.iterdir())
    refused("run", "--resume", str(run_dir), says="option 'epochs' is -1, less than 1; the run directory is damaged")
    assert sorted(p.name for p in run_dir.iterdir()) == before  # nothing written: no card, no summary


def test_given_values_are_honoured_and_a_long_warm_up_is_said_and_recorded(demo_root, tmp_path):
    """An option given is used as given (no `value or default`); a warm-up longer than the run is a warning
    at the start, kept in run.json (the run goes on: a short smoke run of a long recipe is a common wish)."""
    from composer.train.run import Run, RunOptions

    options = RunOptions(dataset="demo", data_root=str(demo_root), tiny=True, epochs=2, lr=5e-4, batch_size=4,
                         workers=0, out=str(tmp_path / "runs"), log_with=["none"],
                         sets=["inputs.video.size=32", "inputs.video.frames=4", "train.warmup_epochs=5"])
    job = Run(SPEC, options)
    plan = job._plan(0, "train", None)
    assert (plan.epochs, plan.lr, job.global_batch) == (2, 5e-4, 4)
    assert len(job.warnings) == 1 and "warm-up (5 epochs) is longer than the stage (2 epochs)" in job.warnings[0]
    job._record_start()
    assert json.loads((job.dir / "run.json").read_text())["warnings"] == job.warnings
    job.finish()


# ---------------------------------------------------------------- spec values
@pytest.mark.parametrize("option, says", [
    ("train.betas=[1.5,0.9]", "train.betas.0: input should be less than 1"),
    ("train.betas=[0.9,-0.1]", "train.betas.1: input should be greater than or equal to 0"),
    ("train.seed=1_000_000_000_000_000_000_000", "train.seed: input should be a valid number, not text"),
    ("train.epochs=1_0", "train.epochs: input should be a valid number, not text"),
    ("train.views.crops=2", "crops must be 1 (the centre) or 3"),
    ("train.views={clips: 30, crops: 3}", f"more than {limits.MAX_VIEWS}"),
])
def test_spec_values_that_failed_late_are_located_errors(option, says):
    out = refused("validate", SPEC, "--set", option, says=says)
    assert out.startswith("<--set #1>:1:1: error:"), out


def test_set_extends_is_refused_not_ignored():
    refused("validate", SPEC, "--set", "extends=specs/baselines/clip-lora.yaml", says="cannot change `extends`")


def test_set_count_and_depth_are_bounded():
    sets = [a for i in range(limits.MAX_OVERRIDES + 1) for a in ("--set", f"train.k{i}=1")]
    refused("validate", SPEC, *sets, says=f"more than {limits.MAX_OVERRIDES}")
    refused("validate", SPEC, "--set", ".".join(["a"] * (limits.MAX_DEPTH + 1)) + "=1",
            says=f"at most {limits.MAX_DEPTH} nested")


def test_build_classes_is_a_count_or_names():
    refused("build", SPEC, "--classes", "0", "--no-flops", says="--classes")
    refused("build", SPEC, "--classes", str(limits.MAX_CLASSES + 1), "--no-flops", says="--classes")
    refused("build", SPEC, "--classes", "9" * 40, "--no-flops", says="--classes")
    refused("build", SPEC, "--classes", "a,b,a", "--no-flops", says="repeated")
    for count in ("-5", "5.0", "1e3", "10k", "1,000"):  # numbers that are not a whole count are not names either
        refused("build", SPEC, "--classes", count, "--no-flops", says="whole number")
    def head(classes: str) -> int:  # a linear head: one output per class
        result = invoke("build", "specs/baselines/clip-linear-probe.yaml", "--size", "tiny", "--no-flops", "--json",
                        "--classes", classes)[0]
        return json.loads(result.output)["trainable_params"]

    assert head("3") == head("walk, run,jump") == head("4") - (512 + 1)


def test_sweep_takes_one_seed_or_a_list_not_both():
    refused("sweep", SPEC, "--seed", "1", "--seeds", "1,2", "--dry-run", says="not both")


# ---------------------------------------------------------------- other commands
def test_export_refuses_a_nan_tolerance(tmp_path):
    refused("export", SPEC, "--format", "onnx", "--out", str(tmp_path / "x"), "--tolerance", "nan",
            "--classes", "a,b", says="'nan' is not a finite number")
    assert not (tmp_path / "x").exists()


def test_data_prepare_refuses_a_nan_frame_rate_and_too_many_jobs(tmp_path):
    refused("data", "prepare", "--data-root", str(tmp_path), "--out", str(tmp_path / "o"), "--fps", "nan",
            says="'nan' is not a finite number")
    refused("data", "prepare", "--data-root", str(tmp_path), "--out", str(tmp_path / "o"), "--jobs",
            str(limits.MAX_WORKERS + 1), says="--jobs")


def test_views_are_bounded(tmp_path):
    refused("predict", SPEC, str(tmp_path), "--views", "30x3", "--classes", "a,b", says=f"more than {limits.MAX_VIEWS}")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_classes_file_must_be_a_small_regular_file(tmp_path):
    from composer.deploy.predict import read_classes

    big = write(tmp_path, "big.txt", "x\n" * (limits.MAX_CLASSES_FILE_BYTES // 2 + 1))
    with pytest.raises(DataError, match=f"at most {limits.MAX_CLASSES_FILE_BYTES} bytes"):
        read_classes(None, str(big))
    os.mkfifo(tmp_path / "pipe")  # was: blocked forever reading it
    with pytest.raises(DataError, match="not a regular file"):
        read_classes(None, str(tmp_path / "pipe"))


def test_many_class_names_answer_at_once():
    """Was: the repeated-name check compared every name with every other (quadratic: minutes at 100 000)."""
    from composer.deploy.predict import read_classes

    start = time.perf_counter()
    assert len(read_classes(",".join(f"c{i}" for i in range(limits.MAX_CLASSES)), None)) == limits.MAX_CLASSES
    assert time.perf_counter() - start < FAST_S
    with pytest.raises(DataError, match=f"more than {limits.MAX_CLASSES}"):
        read_classes(",".join(f"c{i}" for i in range(limits.MAX_CLASSES + 1)), None)


def test_a_list_dataset_label_is_bounded_before_classes_are_made(tmp_path):
    """Was: one class made per number up to the largest label: a label of 10^9 made 10^9 classes."""
    from composer.data.datasets import load_dataset

    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "a.mp4").write_bytes(b"")
    write(tmp_path, "train.txt", f"v/a.mp4 0\nv/a.mp4 {limits.MAX_CLASSES}\nv/a.mp4 ¹\n")
    write(tmp_path, "test.txt", "v/a.mp4 0\n")
    with pytest.raises(DataError) as e:
        load_dataset("list", tmp_path)
    assert f"train.txt:2: label {limits.MAX_CLASSES} is larger than {limits.MAX_CLASSES - 1}" in str(e.value)
    assert "train.txt:3: label '¹' is neither a class name nor a number" in str(e.value)  # was: int() raised


# ---------------------------------------------------------------- sweeps
def test_a_sweep_over_the_run_limit_is_refused_before_any_variant_is_built(tmp_path):
    values = ",".join(str(i) for i in range(1, 11))
    grids = [a for key in ("train.epochs", "train.batch_size", "train.accumulate")
             for a in ("--grid", f"{key}={values}")]
    for extra in (["--dry-run"], ["--dataset", "demo", "--out", str(tmp_path / "s")]):
        refused("sweep", SPEC, *grids, "--seeds", "0,1", *extra, says=f"more than {limits.MAX_SWEEP_RUNS} runs")
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("args, says", [
    (["--seeds", str(2**63)], "within 64 bits"),
    (["--seeds", "1_000_000_000_000_000_000_000,2"], "within 64 bits"),
    (["--seeds", "0,x"], "give integers"),
    (["--seeds", ",".join(map(str, range(limits.MAX_SWEEP_RUNS + 1)))], "seeds, more than"),
    (["--lr", "nan"], "'nan' is not a finite number"),
    (["--epochs", "0"], "--epochs"),
    (["--workers", "100000"], "--workers"),
    (["--data-root", ""], "--data-root"),
])
def test_sweep_options_are_checked_before_its_folder(tmp_path, args, says):
    refused("sweep", SPEC, "--dataset", "demo", "--out", str(tmp_path / "s"), *args, says=says)
    assert not (tmp_path / "s").exists()


def test_the_limits_are_documented():
    text = open("docs/language.md", encoding="utf-8").read()
    for value in (limits.MAX_WORKERS, limits.MAX_VIEWS, limits.MAX_OVERRIDES, limits.MAX_SWEEP_RUNS):
        assert f"| {value} " in text or f"| {value:,} ".replace(",", " ") in text, value
    assert "100 000" in text and "1 MiB" in text


def test_spec_errors_stay_spec_errors():
    """The IR's number check is a located SpecError from load_spec, not a pydantic exception."""
    from composer.spec.load import load_spec

    with pytest.raises(SpecError):
        load_spec(SPEC, ['train.lr="1e-3"'])
