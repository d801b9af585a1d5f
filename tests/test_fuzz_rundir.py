"""Fuzzing run directories: whatever is written into run.json, state.json, a checkpoint's manifest.json or the
`latest` pointer, `composer run --resume` and `composer eval` end with exit 0 or 2, never a traceback, in
bounded time, and write nothing outside their folders.

One tiny run is trained once per module (8 training and 8 test videos of the demo set, one step); each
example mutates one field of one file of a fresh copy (a wrong type, a missing key, a huge, negative or
non-finite number, a path that escapes, a deeply nested value, or the whole file replaced by garbage bytes),
mostly re-sealing the checkpoint's checksums so the mutation reaches the code that reads the field.
Budget: 25 examples, about a minute on 2 cores besides the training run (a refusal takes well
under a second; an accepted resume or eval builds the model and tests 8 videos).
"""

import hashlib
import json
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from composer.cli import main

SPEC = "specs/baselines/clip-adapter.yaml"
SMALL = ["inputs.video.size=32", "inputs.video.frames=2", "train.views={clips: 1, crops: 1}"]
DEEP = "__deep__"  # stands for a JSON value nested far deeper than any parser's recursion limit
ESCAPES = ["../outside", "/etc/passwd", "../../../../tmp/escaped", "step-00000001/../../x", "./weights.safetensors"]
VALUES = st.one_of(
    st.sampled_from(["x", "", [], {}, True, False, None, 10 ** 30, -10 ** 30, -1, 0, 2 ** 63, float("nan"),
                     float("inf"), -1e308, [1, "a", None], {"a": {"b": [1]}}, DEEP, *ESCAPES]),
    st.integers(), st.text(max_size=12))
POINTERS = st.one_of(st.sampled_from(["", "step-99999999", "..", "../x", "/etc", "step-00000001/..", DEEP]),
                     st.text(max_size=30), st.binary(max_size=40))
SECONDS = 120  # per example, on a loaded machine: an accepted resume builds the model and tests 8 videos


@pytest.fixture(scope="module")
def trained(demo_root, tmp_path_factory):
    """A finished tiny run on 8 training and 8 test videos (one per class), and its data root."""
    base = tmp_path_factory.mktemp("fuzz-rundir")
    small = base / "small"
    small.mkdir()
    (small / "videos").symlink_to(demo_root / "videos")
    for name in ("classes.txt", "descriptions.json", "ftp_answers.json", "chinese_labels.json"):
        shutil.copy(demo_root / name, small / name)
    for split, every in (("train", 24), ("test", 16)):  # the demo lists its classes in order, 24 and 16 each
        lines = (demo_root / f"{split}.txt").read_text().splitlines()
        (small / f"{split}.txt").write_text("\n".join(lines[::every]) + "\n")
    out = base / "runs"
    args = ["run", SPEC, "--dataset", "demo", "--data-root", str(small), "--size", "tiny", "--workers", "0",
            "--batch-size", "8", "--max-steps", "1", "--epochs", "1", "--seed", "0", "--log-with", "none",
            "--out", str(out), *(a for s in SMALL for a in ("--set", s))]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return next(out.iterdir()), small


def _paths(value, prefix=()):
    """Every path to a value in a JSON document (the first three items of a list, four levels deep)."""
    yield prefix
    if len(prefix) >= 4:
        return
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _paths(inner, prefix + (key,))
    elif isinstance(value, list):
        for i, inner in enumerate(value[:3]):
            yield from _paths(inner, prefix + (i,))


def _encode(value) -> str:
    text = json.dumps(value, allow_nan=True)
    return text.replace(json.dumps(DEEP), "[" * 100_000 + "]" * 100_000)


def _mutated(text: str, data) -> str | bytes:
    """One field of a JSON document replaced or deleted, or the whole document replaced by garbage."""
    doc = json.loads(text)
    if data.draw(st.integers(0, 9), label="garbage") == 0:
        return data.draw(st.binary(max_size=64), label="bytes")
    path = data.draw(st.sampled_from(list(_paths(doc))), label="path")
    if not path:
        return _encode(data.draw(VALUES, label="document"))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if data.draw(st.booleans(), label="delete"):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(VALUES, label="value")
    return _encode(doc)


def _reseal(checkpoint: Path) -> None:
    """Make the manifest agree with the files and itself again, as someone forging a checkpoint would."""
    try:
        manifest = json.loads((checkpoint / "manifest.json").read_text())
    except (ValueError, RecursionError, UnicodeDecodeError):
        return
    if not isinstance(manifest, dict):
        return
    files = manifest.get("files")
    if isinstance(files, dict) and isinstance(files.get("state.json"), dict):
        raw = (checkpoint / "state.json").read_bytes()
        files["state.json"].update(sha256=hashlib.sha256(raw).hexdigest(), bytes=len(raw))
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    manifest["manifest_sha256"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    (checkpoint / "manifest.json").write_text(json.dumps(manifest, allow_nan=True))


def _write(path: Path, content: str | bytes) -> None:
    path.write_bytes(content if isinstance(content, bytes) else content.encode())


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=st.data())
def test_a_mutated_run_directory_is_resumed_or_refused_never_a_traceback(trained, tmp_path_factory, data):
    source, small = trained
    sandbox = tmp_path_factory.mktemp("example")
    run_dir = Path(shutil.copytree(source, sandbox / "box" / source.name))
    checkpoint = run_dir / "checkpoints" / (run_dir / "checkpoints" / "latest").read_text().strip()
    target = data.draw(st.sampled_from(["run.json", "state.json", "manifest.json", "latest"]), label="file")
    if target == "latest":
        pointer = data.draw(POINTERS, label="pointer")
        _write(run_dir / "checkpoints" / "latest", _encode([DEEP])[1:-1] if pointer == DEEP else pointer)
    else:
        path = run_dir / target if target == "run.json" else checkpoint / target
        _write(path, _mutated(path.read_text(), data))
        if target != "run.json" and data.draw(st.integers(0, 4), label="reseal"):
            _reseal(checkpoint)
    if data.draw(st.booleans(), label="eval"):
        args = ["eval", str(run_dir / "spec.yaml"), "--checkpoint", str(run_dir / "checkpoints"), "--dataset", "demo",
                "--data-root", str(small), "--workers", "0", "--out", str(sandbox / "box" / "evals"),
                "--set", SMALL[0]]  # spec.yaml holds it, but without it eval would make a tiny run's clips 64 px
    else:  # a record may ask for any number of epochs and workers: these two are held to the original's
        args = ["run", "--resume", str(run_dir), "--epochs", "1", "--override", "epochs", "--workers", "0",
                "--override", "workers"]
    start = time.monotonic()
    result = CliRunner().invoke(main, args)
    seconds = time.monotonic() - start
    assert result.exit_code in (0, 2), (result.exit_code, result.output[-2000:])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        assert result.output.strip(), "a refusal says why"
    assert seconds < SECONDS, f"{seconds:.0f} s"
    assert sorted(p.name for p in sandbox.iterdir()) == ["box"], "something was written outside the run's folder"
    shutil.rmtree(sandbox)


@pytest.mark.parametrize("file, content, command, reason", [
    ("summary.json", {"parts": 5}, "card", "summary.json: it holds no test parts"),
    ("summary.json", {"parts": {"test": {"top1": "high"}}}, "card", "test part 'test' has no top-1"),
    ("run.json", {"dataset": "demo"}, "card", "its 'dataset' is 'demo'"),
    ("run.json", {"options": {"epochs": "two"}}, "resume", "option 'epochs' is 'two'"),
    ("run.json", {"options": {"seed": 10 ** 30}}, "resume", "seed 1000000000000000000000000000000 is out of range"),
    ("run.json", {"changes": [5]}, "resume", "its change record 5 is not one composer writes"),
    ("summary.json", "[[[", "resume", "summary.json cannot be read")], ids=lambda v: v if isinstance(v, str) else "")
def test_a_damaged_record_is_refused_in_one_line(trained, tmp_path, file, content, command, reason):
    """run.json and summary.json are read back by resume and by the model card: a damaged one is named,
    with exit status 2, before any work."""
    source, _ = trained
    run_dir = Path(shutil.copytree(source, tmp_path / source.name))
    if isinstance(content, str):
        (run_dir / file).write_text(content)
    else:
        record = json.loads((run_dir / file).read_text())
        for key, value in content.items():
            record[key] = dict(record[key], **value) if key == "options" else value
        (run_dir / file).write_text(json.dumps(record))
    args = ["card", str(run_dir)] if command == "card" else ["run", "--resume", str(run_dir)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and reason in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1
