"""One data-checking path: `composer data check` and `composer run` report the same problems on the same
broken dataset (missing files, a file that is not a video, a truncated mp4, a 1-frame video, a partly
decodable one); a partly decodable video counts once per run; a bad test video counts against accuracy."""

import json

import torch
from click.testing import CliRunner
from conftest import write_video
from rich.console import Console

from composer.cli import main
from composer.data.clips import once_per_video
from composer.errors import DataError
from composer.train.metrics import classification_metrics
from composer.train.run import Run, RunOptions

SMALL = ["inputs.video.size=32", "inputs.video.frames=4", "train.views={clips: 1, crops: 1}"]


def broken(root, bad_label: bool = True):
    """A list-layout dataset with one of each problem; returns the root."""
    for name, frames, seed in (("a1", 8, 0), ("a2", 8, 1), ("b1", 8, 2), ("b2", 8, 3), ("t1", 8, 4),
                               ("t2", 8, 5), ("one", 1, 6), ("partial", 8, 7), ("cut", 8, 8)):
        write_video(root / f"{name}.mp4", frames=frames, seed=seed)
    data = bytearray((root / "partial.mp4").read_bytes())  # zeroed packets: some frames decode, some do not
    start = data.find(b"mdat") + 8
    data[start + (len(data) - start) // 3: start + (len(data) - start) // 2] = bytes((len(data) - start) // 2
                                                                                     - (len(data) - start) // 3)
    (root / "partial.mp4").write_bytes(bytes(data))
    cut = (root / "cut.mp4").read_bytes()
    (root / "cut.mp4").write_bytes(cut[: len(cut) * 2 // 3])  # truncated: the index at the end is gone
    (root / "notes.mp4").write_text("not a video")
    (root / "classes.txt").write_text("a\nb\n")
    (root / "train.txt").write_text("a1.mp4 a\ngone1.mp4 b\nb1.mp4 b\nnotes.mp4 a\none.mp4 b\npartial.mp4 a\n"
                                    "a2.mp4 a\nb2.mp4 b\n")
    (root / "test.txt").write_text("t1.mp4 a\ngone2.mp4 b\ncut.mp4 b\nt2.mp4 b\n" + ("x.mp4 c\n" if bad_label else ""))
    return root


def check_lines(root) -> tuple[int, list[str]]:
    result = CliRunner().invoke(main, ["data", "check", "--dataset", "list", "--data-root", str(root), "--frames", "4"])
    return result.exit_code, [line.strip() for line in result.output.splitlines() if line.startswith("  ")]


def test_data_check_and_run_stop_on_the_same_index_problems(tmp_path):
    root = broken(tmp_path)
    code, lines = check_lines(root)
    assert code == 1
    index = [line for line in lines if "train.txt:" in line or "test.txt:" in line]
    assert index == [f"{root / 'train.txt'}:2: video not found: {root / 'gone1.mp4'}",
                     f"{root / 'test.txt'}:2: video not found: {root / 'gone2.mp4'}",
                     f"{root / 'test.txt'}:5: label 'c' is neither a class name nor a number"]  # file order, once
    for skip in (False, True):  # a bad label stops a run even when missing videos are skipped
        try:
            Run("specs/baselines/clip-adapter.yaml", RunOptions(dataset="list", data_root=str(root), tiny=True,
                                                                skip_missing=skip, workers=0, sets=list(SMALL),
                                                                out=str(tmp_path / "runs")), console=Console(quiet=True))
            raise AssertionError("the run started")
        except DataError as e:
            said = [line.strip() for line in str(e).splitlines()[1:] if line.startswith("  ")]
        assert said == index
    assert all(".cpp" not in line and "SingleStreamDecoder" not in line for line in lines)


def test_data_check_and_run_report_the_same_videos_and_a_bad_one_counts_once(tmp_path):
    root = broken(tmp_path, bad_label=False)
    code, lines = check_lines(root)
    assert code == 1
    said = {line.split(": ", 1)[0]: line for line in lines}
    assert set(said) == {f"{root / 'train.txt'}:2", f"{root / 'test.txt'}:2", str(root / "notes.mp4"),
                         str(root / "cut.mp4"), str(root / "one.mp4"), str(root / "partial.mp4")}
    assert said[str(root / "one.mp4")].endswith("1 frame(s)")
    console = Console(record=True, width=400)
    job = Run("specs/baselines/clip-adapter.yaml",
              RunOptions(dataset="list", data_root=str(root), tiny=True, skip_missing=True, workers=0, epochs=2,
                         batch_size=4, seed=0, sets=list(SMALL), out=str(tmp_path / "runs"), log_with=["none"]),
              console=console)
    printed = [line.strip() for line in console.export_text().splitlines() if line.startswith("  ")]
    # the run opens videos without decoding them (as `data check --no-decode`): the partly decodable one is
    # found when training reads it
    assert printed == [line for line in lines if "partial.mp4" not in line]
    summary = job.fit()
    partial = [b for b in summary["bad_videos"] if b.startswith(str(root / "partial.mp4"))]
    assert len(partial) == 1  # bad in both epochs, counted once
    assert [b.split(": ")[0] for b in summary["bad_videos"]] == sorted([str(root / "cut.mp4"),
                                                                       str(root / "notes.mp4"),
                                                                       str(root / "partial.mp4")])
    test = summary["parts"]["test"]
    assert test["count"] == 3 and test["failed"] == 1  # t1, t2 and cut.mp4 (scored as wrong)
    assert test["top1"] <= 100.0 * 2 / 3
    record = json.loads((job.dir / "run.json").read_text())["dataset"]["check"]
    assert record["undecodable"] == [line for line in lines if "cut.mp4" in line or "notes.mp4" in line]
    job.finish()


def test_short_videos_can_be_skipped(tmp_path):
    root = broken(tmp_path, bad_label=False)
    result = CliRunner().invoke(main, ["data", "check", "--dataset", "list", "--data-root", str(root),
                                       "--short-videos", "skip", "--spec", "specs/baselines/clip-adapter.yaml",
                                       "--set", "inputs.video.frames=4"])
    assert "shorter than the 4 frames sampled (--short-videos skip" in result.output


def test_a_failed_test_video_counts_as_wrong():
    scores = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    metrics = classification_metrics(scores, torch.tensor([0, 1]), ["a", "b"], failed=torch.tensor([1]))
    assert metrics["count"] == 3 and metrics["failed"] == 1
    assert abs(metrics["top1"] - 200 / 3) < 1e-4 and metrics["per_class"] == {"a": 100.0, "b": 50.0}


def test_a_video_is_one_bad_video_whatever_frames_failed():
    assert once_per_video(["/v/x.mp4: frames 1 failed", "/v/a.mp4: empty file", "/v/x.mp4: frames 7 failed"]) == \
        ["/v/a.mp4: empty file", "/v/x.mp4: frames 1 failed"]
