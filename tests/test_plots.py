"""Pictures of a run: the curves and confusion matrices drawn from fabricated run directories."""

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import ROOT

from composer.cli import main
from composer.errors import DataError
from composer.viz import plots

PNG = b"\x89PNG\r\n\x1a\n"


def make_run(folder: Path, stages=(("train", 3),), parts=("test",), matrix=None, classes=3) -> Path:
    """A run directory as `composer run` writes it: metrics.jsonl, spec.yaml and (optionally) confusion.json."""
    folder.mkdir(parents=True)
    lines = []
    for stage, epochs in stages:
        for epoch in range(1, epochs + 1):
            record = {"stage": stage, "epoch": epoch, "loss": 2.0 / (len(lines) + 1), "lr": 1e-3, "clips": 8,
                      "clips_per_s": 4.0, "seconds": 2.0, "bad_videos": 0}
            if epoch % 2 == 0 or epoch == epochs:
                for part in parts:
                    record[part] = {"top1": 10.0 * (len(lines) + 1), "top5": 100.0, "mean_class": 50.0, "count": 8}
            lines.append(json.dumps(record))
    (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "spec.yaml").write_text("name: made-up-spec\n")
    if matrix is not None:
        names = [f"class {i}" for i in range(classes)]
        (folder / "confusion.json").write_text(json.dumps({"parts": {p: {"classes": names, "matrix": matrix} for p in parts}}))
    return folder


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG, f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def pixels(path: Path) -> np.ndarray:
    import matplotlib.image

    return matplotlib.image.imread(path)


DIAGONAL = [[5, 0, 0], [0, 4, 1], [0, 2, 3]]
MIXED = [[0, 5, 0], [4, 0, 1], [3, 0, 2]]


def test_a_run_gets_its_curves_and_one_confusion_picture_per_test_part(tmp_path):
    run = make_run(tmp_path / "run", parts=("base", "novel"), matrix=DIAGONAL)
    written = plots.draw_run(run)
    assert [p.name for p in written] == ["learning-curves.png", "confusion-base.png", "confusion-novel.png"]
    for path in written:
        width, height = png_size(path)
        assert 400 <= width <= 2000 and 300 <= height <= 2000, (path.name, width, height)


def test_the_confusion_picture_follows_the_matrix(tmp_path):
    a = plots.draw_run(make_run(tmp_path / "a" / "run", matrix=DIAGONAL))[1]  # same names: same titles
    b = plots.draw_run(make_run(tmp_path / "b" / "run", matrix=MIXED))[1]
    again = plots.draw_run(make_run(tmp_path / "c" / "run", matrix=DIAGONAL))[1]
    assert pixels(a).shape == pixels(b).shape
    assert not np.array_equal(pixels(a), pixels(b))
    assert np.array_equal(pixels(a), pixels(again))  # so the difference above comes from the matrix


def test_the_drawn_matrix_is_normalised_per_true_class():
    counts = [[2, 2, 0], [0, 0, 0], [1, 0, 3]]  # class 1 was never tested: its row stays 0
    fig = plots.confusion_figure(counts, ["a", "b", "c"], "t")
    drawn = fig.axes[0].images[0].get_array()
    assert np.allclose(drawn, [[0.5, 0.5, 0], [0, 0, 0], [0.25, 0, 0.75]])
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "b", "c"]
    assert "8 videos, top-1 62.5%" in fig.axes[0].get_title()


def test_many_classes_drop_numbers_then_names(tmp_path):
    fifty = plots.confusion_figure(np.eye(50, dtype=int).tolist(), [f"c{i}" for i in range(50)], "t")
    assert not fifty.axes[0].texts and len(fifty.axes[0].get_xticklabels()) == 50
    many = np.eye(400, dtype=int)
    run = make_run(tmp_path / "run", matrix=many.tolist(), classes=400)
    picture = plots.draw_run(run)[1]
    width, height = png_size(picture)
    assert width <= 2000 and height <= 2000
    fig = plots.confusion_figure(many.tolist(), [f"c{i}" for i in range(400)], "t")
    assert "400 classes" in fig.axes[0].get_xlabel()
    fig.canvas.draw()
    ticks = [t.get_text().replace("−", "-") for t in fig.axes[0].get_xticklabels() if t.get_text()]
    assert 2 <= len(ticks) <= 20 and all(t.lstrip("-").isdigit() for t in ticks), ticks  # indices, not names


def test_stages_share_one_epoch_axis_with_their_boundaries(tmp_path):
    run = make_run(tmp_path / "run", stages=(("warmup", 2), ("train", 3)))
    c = plots.curves(plots.read_metrics(run))
    assert c.epochs == [1, 2, 3, 4, 5]
    assert c.stages == [(0.5, "warmup"), (2.5, "train")]
    assert c.top1["test"][0] == [2, 4, 5]  # evaluated epochs only
    fig = plots.curves_figure(c, "t")
    assert list(fig.axes[0].lines[0].get_xdata()) == [1, 2, 3, 4, 5]
    assert [round(v, 3) for v in fig.axes[1].lines[0].get_ydata()] == [20.0, 40.0, 50.0]


def test_an_epoch_logged_twice_by_a_resumed_run_counts_once(tmp_path):
    run = make_run(tmp_path / "run")
    lines = (run / "metrics.jsonl").read_text().splitlines()
    repeat = json.loads(lines[1]) | {"loss": 9.0}
    (run / "metrics.jsonl").write_text("\n".join(lines + [json.dumps(repeat)]) + "\n")
    c = plots.curves(plots.read_metrics(run))
    assert c.epochs == [1, 2, 3] and c.loss[1] == 9.0


def test_without_confusion_only_the_curves_are_drawn(tmp_path):
    assert [p.name for p in plots.draw_run(make_run(tmp_path / "run"))] == ["learning-curves.png"]


def test_a_damaged_confusion_file_is_refused(tmp_path):
    run = make_run(tmp_path / "run", matrix=[[1, 0], [0, 1]])
    with pytest.raises(DataError, match="not 3 x 3"):
        plots.draw_run(run)


def test_overlay_of_two_runs(tmp_path):
    a = make_run(tmp_path / "a", matrix=DIAGONAL)
    b = make_run(tmp_path / "b", stages=(("warmup", 1), ("train", 4)))
    out = plots.overlay([a, b], tmp_path / "both.png")
    assert png_size(out)[0] >= 800
    alone = plots.overlay([a], tmp_path / "alone.png")
    assert not np.array_equal(pixels(out), pixels(alone))


def test_cli_redraws_one_run_and_overlays_several(tmp_path, monkeypatch):
    a, b = make_run(tmp_path / "a", matrix=DIAGONAL), make_run(tmp_path / "b")
    result = CliRunner().invoke(main, ["plot", str(a)])
    assert result.exit_code == 0, result.output
    assert result.output.split() == [str(a / "learning-curves.png"), str(a / "confusion-test.png")]
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["plot", str(a), str(b)])
    assert result.exit_code == 0, result.output
    assert png_size(tmp_path / "overlay.png")[0] > 0
    result = CliRunner().invoke(main, ["plot", str(a), str(b), "-o", str(tmp_path / "c.svg")])
    assert result.exit_code == 0 and (tmp_path / "c.svg").read_text().lstrip().startswith("<?xml")


@pytest.mark.parametrize("case", ["not a run", "missing", "empty metrics", "bad file name"])
def test_cli_refuses_with_one_line(tmp_path, case):
    run = make_run(tmp_path / "run")
    args = {"not a run": [str(tmp_path)], "missing": [str(tmp_path / "nope")],
            "empty metrics": [str(run)], "bad file name": [str(run), "-o", str(tmp_path / "x.txt")]}[case]
    if case == "empty metrics":
        (run / "metrics.jsonl").write_text("")
    result = CliRunner().invoke(main, ["plot", *args])
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and result.output.startswith("error: ")


def test_other_commands_do_not_import_matplotlib():
    import subprocess
    import sys

    code = "import sys, composer.cli, composer.viz.plots; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_a_zero_shot_run_is_left_out_of_an_overlay_with_a_note(tmp_path, monkeypatch):
    """A zero-shot run trains no epoch: it has a confusion matrix but no curves. Overlaid with trained runs it
    is skipped with a note (it aborted the whole overlay); alone, its confusion picture is still drawn."""
    a, b = make_run(tmp_path / "a"), make_run(tmp_path / "b")
    zero = tmp_path / "zero"
    zero.mkdir()
    (zero / "run.json").write_text("{}")
    (zero / "spec.yaml").write_text("name: zero-shot\n")
    (zero / "confusion.json").write_text(json.dumps({"parts": {"test": {"classes": ["a", "b", "c"],
                                                                         "matrix": DIAGONAL}}}))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["plot", str(a), str(zero), str(b), "-o", "three.png"])
    assert result.exit_code == 0, result.output
    assert f"note: {zero} has no learning curves" in result.stderr and result.stdout.split() == ["three.png"]
    assert not np.array_equal(pixels(tmp_path / "three.png"), pixels(plots.overlay([a], tmp_path / "one.png")))
    alone = CliRunner().invoke(main, ["plot", str(zero)])
    assert alone.exit_code == 0 and alone.output.split() == [str(zero / "confusion-test.png")]
    none = CliRunner().invoke(main, ["plot", str(zero), str(zero), "-o", "none.png"])
    assert none.exit_code == 2 and "error: none of the runs trained an epoch" in none.output
