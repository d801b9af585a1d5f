"""Fuzzing every command line: whatever the options, a command ends with exit status 0 or 2 (1 where a command
documents it), never a Python traceback, within a bounded time, and a refusal leaves no folder behind.

Each command runs in-process through click's CliRunner. The values are the ones that broke commands before:
NaN, inf, negative numbers, 0, 2^63, `_`-separated and non-ASCII digits, huge strings, path traversal, empty
strings, devices, many repetitions. Where a valid combination would start real work, the command is kept
cheap: `run` and `eval` point at a list dataset without videos (every option is checked before the dataset,
and the dataset before a run folder), `sweep` runs with --dry-run at tiny size, `build` at tiny size without
FLOPs, `export` without a usable checkpoint, `predict` on at most one undecodable file.

Budget: all the fuzzers together about 60 s on a busy 2-core machine (measured: see the report of the
branch that added them); the goal is under 90 s. Examples per command are set in EXAMPLES."""

import contextlib
import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from composer.cli import main

SPEC = "specs/baselines/clip-linear-probe.yaml"
SMALL = ["--set", "inputs.video.size=32", "--set", "inputs.video.frames=4"]
BOUND_S = 60.0  # per command: a refusal takes well under a second; the few valid builds a few seconds
EXAMPLES = {"run": 40, "eval": 25, "predict": 12, "export": 25, "sweep": 20, "prepare": 25, "build": 25, "bill": 12,
            "output": 30}


def fuzz_settings(command: str):
    return settings(max_examples=EXAMPLES[command], deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


# ---------------------------------------------------------------- values
_NUMBERS = ["0", "-0", "1", "-1", "2", str(2**31), str(2**40), str(2**62), str(2**63 - 1), str(2**63), str(-2**63),
            str(2**64), "1" + "0" * 30, "9" * 400,
            "1_000", "1_000_000_000_000_000_000_000", "１２", "١٢", "²", "1e3", "0x10", "nan", "NaN", "inf", "-inf",
            "1e400", "-1e-400", "0.5", "-0.5", "1e-3", "", " ", "3 ", "+3"]
NUMBER = st.one_of(st.sampled_from(_NUMBERS), st.integers(-2**70, 2**70).map(str), st.integers(1, 2**63).map(str),
                   st.floats(allow_nan=True, allow_infinity=True).map(repr))
_TEXTS = ["", " ", "a" * 5000, "../../../../etc/passwd", "/dev/null", "/dev/zero", "/proc/self/mem", "..", ".",
          "~", "$HOME", "C:\\x", "-", "--", "--help", "a,b,,c", "[", "{a: 1}", "ünïcödé", "日本語", "\u202e",
          "\udcff"]  # a byte that is not UTF-8, as Python's argv holds it
TEXT = st.one_of(st.sampled_from(_TEXTS), st.text(st.characters(blacklist_characters="\x00"), max_size=40))
VALUE = st.one_of(NUMBER, TEXT)
_KEYS = ["train.lr", "train.epochs", "train.seed", "train.batch_size", "train.betas", "train.views",
         "train.views.crops", "train.warmup_epochs", "train.accumulate", "inputs.video.size", "inputs.video.frames",
         "extends", "components.head.params.dim", "losses.ce", "name", "a" * 300, "", "train..lr", "0.x",
         ".".join(["a"] * 100)]
KEY = st.one_of(st.sampled_from(_KEYS), st.text(max_size=20))
SET = st.one_of(st.builds(lambda k, v: f"{k}={v}", KEY, VALUE), TEXT)


def option(name: str, values) -> st.SearchStrategy:
    return values.map(lambda v: [name, v])


def repeated(name: str, values, most: int = 300) -> st.SearchStrategy:
    """The option given many times (up to `most`, past every limit on repetitions)."""
    return st.tuples(values, st.integers(1, most)).map(lambda t: [a for _ in range(t[1]) for a in (name, t[0])])


def command_line(options: list[st.SearchStrategy]) -> st.SearchStrategy:
    return st.lists(st.sampled_from(options).flatmap(lambda s: s), max_size=3).map(
        lambda parts: [a for part in parts for a in part])


def flag(name: str) -> st.SearchStrategy:
    return st.just([name])


# ---------------------------------------------------------------- the property
def ends_cleanly(args: list[str], may_leave: Path | None = None, codes=(0, 2)):
    """Exit status in `codes`, no traceback, bounded time; a refusal (2) leaves `may_leave` uncreated."""
    start = time.perf_counter()
    result = CliRunner().invoke(main, args)
    seconds = time.perf_counter() - start
    shown = " ".join(a if len(a) < 60 else a[:57] + "..." for a in args)
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        f"{shown}\n{type(result.exception).__name__}: {result.exception}"
    assert result.exit_code in codes, f"{shown}\nexit {result.exit_code}\n{result.output[-2000:]}"
    assert "Traceback" not in result.output, f"{shown}\n{result.output[-2000:]}"
    assert seconds < BOUND_S, f"{shown}: {seconds:.1f} s"
    if result.exit_code == 2 and may_leave is not None:
        assert not may_leave.exists(), f"{shown}: refused, but {may_leave} was created"
    return result


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> dict[str, Path]:
    """Folders and files the fuzzers point at: a list dataset without videos, a tiny checkpoint of SPEC, a
    file that is not a checkpoint, an undecodable .mp4."""
    import torch

    from composer.compiler.compile import BuildOptions, compile_spec
    from composer.rundir.checkpoint import save_trainable
    from composer.spec.load import load_spec

    root = tmp_path_factory.mktemp("fuzz")
    empty = root / "empty-list"
    empty.mkdir()
    (empty / "train.txt").write_text("")
    (empty / "test.txt").write_text("")
    torch.manual_seed(0)
    model = compile_spec(load_spec(SPEC, ["inputs.video.size=32", "inputs.video.frames=4"]),
                         BuildOptions(device="cpu", tiny=True, num_classes=3))
    save_trainable(model, root / "tiny.safetensors", {"classes": ["a", "b", "c"], "seed": 0, "size": "tiny",
                                                      "weights": "random"})
    (root / "garbage.safetensors").write_bytes(b"\x00" * 64)
    (root / "bad.mp4").write_bytes(b"not a video")
    (root / "notes.txt").write_text("x")
    return {"root": root, "empty": empty, "ckpt": root / "tiny.safetensors", "garbage": root / "garbage.safetensors",
            "bad_video": root / "bad.mp4", "text": root / "notes.txt"}


# ---------------------------------------------------------------- run
RUN_OPTIONS = [
    option("--lr", NUMBER), option("--epochs", NUMBER), option("--batch-size", NUMBER),
    option("--eval-batch-size", NUMBER), option("--max-steps", NUMBER), option("--seed", NUMBER),
    option("--workers", NUMBER), option("--shots", NUMBER), option("--split", NUMBER),
    option("--eval-every", NUMBER), option("--save-every", NUMBER), option("--progress-every", NUMBER),
    option("--protocol", st.sampled_from(["supervised", "few-shot", "base-to-novel", "zero-shot", "x", ""])),
    option("--eval-dataset", st.sampled_from(["hmdb51", "list", "nosuch", ""]) | TEXT),
    option("--eval-root", TEXT), option("--device", st.sampled_from(["cpu", "cuda", "cuda:1", "cuda:-1", "mps", "",
                                                                    "cuda:99999999999999999999"]) | TEXT),
    option("--precision", st.sampled_from(["auto", "bf16", "fp16", "fp32", "fp8"])),
    option("--recompute", st.sampled_from(["auto", "all", "none", "some"])),
    option("--size", st.sampled_from(["tiny", "full", "huge"])), option("--weights", st.sampled_from(["demo", "random", "x"])),
    option("--log-with", st.sampled_from(["none", "tensorboard", "mlflow", "nosuch", ""])),
    option("--tracking-uri", TEXT), option("--cache-features", TEXT), option("--short-videos", st.sampled_from(["loop", "skip", "x"])),
    option("--override", st.sampled_from(["epochs", "lr", "", "x"])),
    option("--set", SET), repeated("--set", SET), option("--unset", KEY), repeated("--unset", KEY, 60),
    flag("--no-plan"), flag("--no-recompute"), flag("--skip-missing"), flag("--gpu-decode"), flag("--compile"),
    flag("--fsdp"),
]


@fuzz_settings("run")
@given(command_line(RUN_OPTIONS))
def test_run_options(place, args):
    out = place["root"] / "runs"
    ends_cleanly(["run", SPEC, "--dataset", "list", "--data-root", str(place["empty"]), "--out", str(out), *args],
                 may_leave=out)


# ---------------------------------------------------------------- eval
VIEWS = st.one_of(st.builds(lambda a, b: f"{a}x{b}", NUMBER, NUMBER), TEXT)
EVAL_OPTIONS = [
    option("--views", VIEWS), option("--batch-size", NUMBER), option("--workers", NUMBER), option("--seed", NUMBER),
    option("--size", st.sampled_from(["tiny", "full", ""])), option("--weights", st.sampled_from(["demo", "random"])),
    option("--shots", NUMBER), option("--protocol", st.sampled_from(["supervised", "few-shot", "zero-shot"])),
    option("--eval-dataset", st.sampled_from(["list", "nosuch"]) | TEXT), option("--out", TEXT),
    option("--split", NUMBER), option("--device", st.sampled_from(["cpu", "cuda", ""])), option("--set", SET),
    repeated("--set", SET), flag("--gpu-decode"),
]


@fuzz_settings("eval")
@given(st.sampled_from(["ckpt", "garbage", "root", "text"]), command_line(EVAL_OPTIONS))
def test_eval_options(place, checkpoint, args):
    out = place["root"] / "evals"  # a fuzzed --out comes later and wins: then there is no folder to look for
    ends_cleanly(["eval", SPEC, "--checkpoint", str(place[checkpoint]), "--dataset", "list", "--data-root",
                  str(place["empty"]), "--out", str(out), *SMALL, *args], may_leave=None if "--out" in args else out)


# ---------------------------------------------------------------- predict
# relative names only (the test runs in a deep temporary folder): the fuzzer must never write outside it
_OUTPUTS = ["", " ", "missing/dir/x.txt", "a" * 300, "a/" * 200 + "x", ".", "..", "sub", "x.md", "/dev/full",
            "/proc/version", "ünï", "\udcff.txt"]
OUTPUT = st.one_of(st.sampled_from(_OUTPUTS), st.text(st.characters(blacklist_characters="/\x00"), max_size=30))


CLASSES = st.one_of(st.sampled_from(["a,b,c", "a,a", ",,,", "", "x"]), TEXT,
                    st.integers(0, 200_001).map(lambda n: ",".join(f"c{i}" for i in range(n))))
PREDICT_OPTIONS = [
    option("--classes", CLASSES), option("--classes-file", st.sampled_from(["/dev/zero", "/dev/null", "/dev/stdin",
                                                                           "/proc/self/mem"]) | TEXT),
    option("--top-k", NUMBER), option("--views", VIEWS), option("--batch-size", NUMBER), option("--workers", NUMBER),
    option("--seed", NUMBER), option("--size", st.sampled_from(["tiny", "full"])),
    option("--precision", st.sampled_from(["auto", "bf16", "fp16", "fp32"])), option("--device", st.sampled_from(["cpu", "cuda", ""])),
    option("--set", SET), flag("--json"),
]


@fuzz_settings("predict")
@given(st.sampled_from(["missing", "root", "text", "bad_video"]), st.lists(OUTPUT, max_size=2),
       st.sampled_from(["ckpt", "garbage", "none"]), command_line(PREDICT_OPTIONS))
def test_predict_options(place, video, more, checkpoint, args):
    """`more`: relative names (a folder, a name too long, an empty one), looked up in a temporary folder."""
    target = str(place[video]) if video in place else str(place["root"] / "missing.mp4")
    ckpt = ["--checkpoint", str(place[checkpoint])] if checkpoint in place else []
    spec = str(Path(SPEC).resolve())
    with contextlib.chdir(place["root"]):
        ends_cleanly(["predict", spec, target, *more, *ckpt, *SMALL, "--workers", "0", *args])


# ---------------------------------------------------------------- export
EXPORT_OPTIONS = [
    option("--tolerance", NUMBER), option("--input", st.sampled_from(["float32", "uint8", "int8"])),
    option("--classes", CLASSES), option("--classes-file", TEXT), option("--seed", NUMBER),
    option("--size", st.sampled_from(["tiny", "full"])), option("--weights", st.sampled_from(["demo", "random"])),
    option("--set", SET), option("--checkpoint", st.sampled_from(["/nonexistent", "", "/dev/null"]) | TEXT),
]


@fuzz_settings("export")
@given(st.sampled_from(["onnx", "torchscript", "exported-program", "tflite"]), command_line(EXPORT_OPTIONS))
def test_export_options(place, fmt, args):
    """Without a usable checkpoint SPEC (which trains a head) is refused: nothing is exported, no folder made."""
    out = place["root"] / "export"
    ends_cleanly(["export", SPEC, "--format", fmt, "--out", str(out), *args], may_leave=out)
    assert not out.exists()


# ---------------------------------------------------------------- sweep
GRID_VALUES = st.lists(st.one_of(NUMBER, st.sampled_from(["[0.9, 0.98]", "{clips: 2, crops: 3}", "[", "'a,b'"])),
                       min_size=0, max_size=3).map(",".join)
GRID = st.one_of(st.builds(lambda k, v: f"{k}={v}", st.sampled_from(_KEYS[:11]), GRID_VALUES),
                 st.builds(lambda k, v: f"{k}={v}", KEY, GRID_VALUES), TEXT,
                 st.integers(2, 5000).map(lambda n: "train.seed=" + ",".join(map(str, range(n)))))
SEEDS = st.one_of(st.lists(NUMBER, min_size=1, max_size=4).map(",".join), TEXT,
                  st.integers(2, 5000).map(lambda n: ",".join(map(str, range(n)))))
SWEEP_OPTIONS = [
    option("--grid", GRID), repeated("--grid", GRID, 400), option("--seeds", SEEDS), option("--shard", TEXT),
    option("--shard", st.builds(lambda a, b: f"{a}/{b}", NUMBER, NUMBER)), option("--batch-size", NUMBER),
    option("--precision", st.sampled_from(["bf16", "fp32", "x"])), option("--lr", NUMBER), option("--epochs", NUMBER),
    option("--workers", NUMBER), option("--set", SET), option("--unset", KEY),
]


@fuzz_settings("sweep")
@given(st.booleans(), command_line(SWEEP_OPTIONS))
def test_sweep_options(place, dry, args):
    """--dry-run builds each variant on the meta device; without it the list dataset without videos is refused
    before the sweep folder, so no run starts either way."""
    out = place["root"] / "sweep"
    where = ["--dry-run"] if dry else ["--dataset", "list", "--data-root", str(place["empty"]), "--out", str(out)]
    ends_cleanly(["sweep", SPEC, "--size", "tiny", *where, *args], may_leave=out)
    assert not out.exists()


# ---------------------------------------------------------------- data prepare
PREPARE_OPTIONS = [
    option("--short-side", NUMBER), option("--keyframe-every", NUMBER), option("--fps", NUMBER),
    option("--crf", NUMBER), option("--preset", st.sampled_from(["fast", "slow", "x"])), option("--jobs", NUMBER),
    option("--dataset", st.sampled_from(["list", "folder", "ucf101", "nosuch", "demo-x", ""])), option("--split", NUMBER),
]


@fuzz_settings("prepare")
@given(st.sampled_from(["empty", "missing", "text", "traversal"]), st.sampled_from(["new", "inside", "same", "text"]),
       command_line(PREPARE_OPTIONS))
def test_data_prepare_options(place, source, target, args):
    root = {"empty": str(place["empty"]), "missing": str(place["root"] / "missing"), "text": str(place["text"]),
            "traversal": str(place["empty"] / ".." / "empty-list")}[source]
    out = {"new": str(place["root"] / "prepared"), "inside": str(place["empty"] / "copy"), "same": root,
           "text": str(place["text"])}[target]
    ends_cleanly(["data", "prepare", "--data-root", root, "--out", out, *args], codes=(0, 1, 2))


# ---------------------------------------------------------------- build
BUILD_OPTIONS = [
    option("--classes", NUMBER), option("--precision", st.sampled_from(["bf16", "fp16", "fp32", "auto"])),
    option("--recompute", st.sampled_from(["auto", "all", "none"])), option("--weights", st.sampled_from(["demo", "random"])),
    option("--set", SET), repeated("--set", SET), option("--unset", KEY), flag("--no-plan"), flag("--json"),
]
# sizes past what torch can describe, past any machine, and a few a bill is made for (each bill takes seconds)
SIZE = st.one_of(st.sampled_from([str(2**40), str(2**62), str(2**63 - 1), str(2**63), "9" * 400, "1" + "0" * 30,
                                  "0", "-1", "nan", "1e400", "3", ""]), st.integers(2**40, 2**64).map(str))
BUDGET = st.one_of(SIZE, SIZE.map(lambda n: n + "TiB"), st.sampled_from(["1000TiB", "1B", "-0GiB", "1.5 GiB", "inf"]))


@fuzz_settings("build")
@given(command_line(BUILD_OPTIONS))
def test_build_options(args):
    result = ends_cleanly(["build", SPEC, "--size", "tiny", "--no-flops", *SMALL, *args])
    if result.exit_code == 0 and "--json" in args:
        json.loads(result.output)


@fuzz_settings("bill")
@given(st.one_of(SIZE.map(lambda b: ["--batch-size", b]), BUDGET.map(lambda m: ["--memory-budget", m]),
                 st.tuples(SIZE, BUDGET).map(lambda t: ["--batch-size", t[0], "--memory-budget", t[1]])))
def test_build_memory_options(args):
    """--batch-size and --memory-budget are priced on meta tensors: a size past 2^63 elements or past any machine
    is refused before a tensor of that shape is asked for."""
    ends_cleanly(["build", SPEC, "--size", "tiny", "--no-flops", "--recompute", "all", *SMALL, *args])


# ---------------------------------------------------------------- where output goes
@fuzz_settings("output")
@given(st.sampled_from(["graph", "fmt", "plot", "card"]), OUTPUT)
def test_output_paths(place, command, output):
    """An output that cannot be written (a folder, a missing folder, a full device, a name too long) is a
    one-line error; an empty one is refused, not read as standard output or the current folder."""
    here = place["root"] / "a" / "b" / "c" / "d" / "e" / "f" / "g" / "h"
    here.mkdir(parents=True, exist_ok=True)
    (here / "sub").mkdir(exist_ok=True)
    spec = str(Path(SPEC).resolve())
    args = {"graph": ["graph", spec, "-o", output], "fmt": ["fmt", spec, "--to", "text", "-o", output],
            "plot": ["plot", output], "card": ["card", output]}[command]
    with contextlib.chdir(here):
        ends_cleanly(args)
