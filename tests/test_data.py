"""Datasets in their standard layouts (fixture trees with real mp4 files), sampling, views, protocols,
and bad input: wrong split lines stop a run before it starts; undecodable videos are skipped and listed."""

import json
import random

import pytest
import torch
from conftest import write_video

from composer.data.clips import ClipConfig, ClipDataset, collate
from composer.data.datasets import clean_name, load_dataset
from composer.data.protocols import base_to_novel, few_shot, harmonic_mean, make_task
from composer.data.sampling import segment_indices, windows
from composer.errors import DataError


def test_class_names_are_cleaned():
    assert clean_name("ApplyEyeMakeup") == "apply eye makeup"
    assert clean_name("brush_hair") == "brush hair"
    assert clean_name("YoYo") == "yo yo"
    assert clean_name("PlayingDaf") == "playing daf"


# ---------------------------------------------------------------- layouts
def test_ucf101(tmp_path):
    lists = tmp_path / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\n2 YoYo\n")
    (lists / "trainlist01.txt").write_text("ApplyEyeMakeup/v_a_g08_c01.avi 1\nYoYo/v_b_g08_c01.avi 2\n")
    (lists / "testlist01.txt").write_text("YoYo/v_c_g01_c01.avi\n")
    for rel in ("ApplyEyeMakeup/v_a_g08_c01.avi", "YoYo/v_b_g08_c01.avi", "YoYo/v_c_g01_c01.avi"):
        write_video(tmp_path / "UCF-101" / rel)
    index = load_dataset("ucf101", tmp_path, split=1)
    assert index.classes == ["apply eye makeup", "yo yo"]
    assert [(i.path.name, i.label) for i in index.splits["train"]] == [("v_a_g08_c01.avi", 0), ("v_b_g08_c01.avi", 1)]
    assert [(i.path.name, i.label) for i in index.splits["test"]] == [("v_c_g01_c01.avi", 1)]


def test_hmdb51(tmp_path):
    splits = tmp_path / "testTrainMulti_7030_splits"
    splits.mkdir()
    (splits / "brush_hair_test_split1.txt").write_text("a.avi 1\nb.avi 2\nc.avi 0\n")
    (splits / "cartwheel_test_split1.txt").write_text("d.avi 2\n")
    for rel in ("brush_hair/a.avi", "brush_hair/b.avi", "cartwheel/d.avi"):
        write_video(tmp_path / "videos" / rel)
    index = load_dataset("hmdb51", tmp_path, split=1)
    assert index.classes == ["brush hair", "cartwheel"]
    assert [i.path.name for i in index.splits["train"]] == ["a.avi"]
    assert sorted((i.path.name, i.label) for i in index.splits["test"]) == [("b.avi", 0), ("d.avi", 1)]


def test_kinetics_csv(tmp_path):
    (tmp_path / "annotations").mkdir()
    header = "label,youtube_id,time_start,time_end,split\n"
    (tmp_path / "annotations" / "train.csv").write_text(header + "abseiling,aaa,10,20,train\nzumba,bbb,0,10,train\n")
    (tmp_path / "annotations" / "validate.csv").write_text(header + "zumba,ccc,5,15,validate\n")
    write_video(tmp_path / "train" / "abseiling" / "aaa_000010_000020.mp4")
    write_video(tmp_path / "train" / "zumba" / "bbb_000000_000010.mp4")
    write_video(tmp_path / "val" / "ccc_000005_000015.mp4")  # flat layout works too
    index = load_dataset("kinetics400", tmp_path)
    assert index.classes == ["abseiling", "zumba"]
    assert [i.label for i in index.splits["train"]] == [0, 1] and index.splits["test"][0].label == 1


def test_ssv2_json(tmp_path):
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "labels.json").write_text(json.dumps({"Pushing something from left to right": "0",
                                                                 "Holding something": "1"}))
    (tmp_path / "labels" / "train.json").write_text(json.dumps([
        {"id": "1", "label": "pushing a cup from left to right", "template": "Pushing [something] from left to right"}]))
    (tmp_path / "labels" / "validation.json").write_text(json.dumps([
        {"id": "2", "label": "holding a cup", "template": "Holding [something]"}]))
    for vid in ("1", "2"):
        write_video(tmp_path / "20bn-something-something-v2" / f"{vid}.webm".replace(".webm", ".webm"))
    index = load_dataset("ssv2", tmp_path)
    assert index.classes == ["pushing something from left to right", "holding something"]
    assert index.flip is False  # left/right classes
    assert index.splits["test"][0].label == 1


def test_diving48_json(tmp_path):
    (tmp_path / "Diving48_vocab.json").write_text(json.dumps([["Back", "15som", "NoTwis", "PIKE"],
                                                              ["Forward", "25som", "1Twis", "FREE"]]))
    (tmp_path / "Diving48_V2_train.json").write_text(json.dumps([{"vid_name": "x", "label": 1}]))
    (tmp_path / "Diving48_V2_test.json").write_text(json.dumps([{"vid_name": "y", "label": 0}]))
    write_video(tmp_path / "rgb" / "x.mp4")
    write_video(tmp_path / "rgb" / "y.mp4")
    index = load_dataset("diving48", tmp_path)
    assert index.classes[1] == "forward 25som 1twis free"
    assert index.splits["train"][0].label == 1


def test_folder_of_class_folders(tmp_path):
    for split in ("train", "val"):
        for cls in ("JumpRope", "Swing"):
            write_video(tmp_path / split / cls / "0.mp4")
    index = load_dataset("folder", tmp_path)
    assert index.classes == ["jump rope", "swing"]
    assert len(index.splits["train"]) == 2 and len(index.splits["test"]) == 2


@pytest.mark.parametrize("sep", [" ", ","])
def test_list_files_with_names_or_numbers(tmp_path, sep):
    write_video(tmp_path / "v" / "a.mp4")
    write_video(tmp_path / "v" / "b.mp4")
    (tmp_path / "classes.txt").write_text("run\nswim\n")
    (tmp_path / "train.txt").write_text(f"v/a.mp4{sep}0\nv/b.mp4{sep}swim\n")
    (tmp_path / "test.csv").write_text("path,label\nv/b.mp4,1\n")
    index = load_dataset("list", tmp_path)
    assert [i.label for i in index.splits["train"]] == [0, 1] and index.splits["test"][0].label == 1


# ---------------------------------------------------------------- bad input
def test_bad_lines_are_listed_before_anything_runs(tmp_path):
    write_video(tmp_path / "v" / "a.mp4")
    (tmp_path / "classes.txt").write_text("run\nswim\n")
    (tmp_path / "train.txt").write_text("v/a.mp4 0\nv/a.mp4 7\nv/missing.mp4 1\nonlyonefield\n")
    (tmp_path / "test.txt").write_text("v/a.mp4 1\n")
    with pytest.raises(DataError) as e:
        load_dataset("list", tmp_path)
    text = str(e.value)
    assert f"{tmp_path / 'train.txt'}:2: label 7 is out of range (0-1)" in text
    assert f"{tmp_path / 'train.txt'}:3: video not found" in text
    assert f"{tmp_path / 'train.txt'}:4: expected 'path label'" in text


def test_skip_missing_lists_instead_of_stopping(tmp_path):
    write_video(tmp_path / "v" / "a.mp4")
    (tmp_path / "train.txt").write_text("v/a.mp4 0\nv/gone.mp4 0\n")
    (tmp_path / "test.txt").write_text("v/a.mp4 0\n")
    index = load_dataset("list", tmp_path, skip_missing=True)
    assert len(index.splits["train"]) == 1 and "gone.mp4" in index.missing[0]


def test_unknown_dataset_and_missing_root(tmp_path):
    with pytest.raises(DataError, match="unknown dataset 'ucf'.*ucf101"):
        load_dataset("ucf", tmp_path)
    with pytest.raises(DataError, match="needs --data-root"):
        load_dataset("hmdb51", None)
    with pytest.raises(DataError, match="HMDB51's split folder testTrainMulti_7030_splits/ not found"):
        load_dataset("hmdb51", tmp_path)


def test_undecodable_videos_are_skipped_and_reported(tmp_path):
    write_video(tmp_path / "good.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("not a video at all")
    good = (tmp_path / "good.mp4").read_bytes()
    (tmp_path / "truncated.mp4").write_bytes(good[: len(good) // 3])
    from composer.data.datasets import Item

    items = [Item(tmp_path / n, 0) for n in ("good.mp4", "empty.mp4", "text.mp4", "truncated.mp4")]
    ds = ClipDataset(items, ClipConfig(frames=4, size=32), train=True)
    batch = collate([ds[i] for i in range(4)])
    assert batch["video"].shape == (1, 4, 3, 32, 32)
    assert len(batch["bad"]) == 3 and any("empty" in b for b in batch["bad"])


def test_data_check_lists_bad_files(tmp_path):
    from click.testing import CliRunner

    from composer.cli import main

    for split in ("train", "test"):
        write_video(tmp_path / split / "run" / "ok.mp4")
    (tmp_path / "train" / "run" / "broken.mp4").write_text("garbage")
    result = CliRunner().invoke(main, ["data", "check", "--dataset", "folder", "--data-root", str(tmp_path)])
    assert result.exit_code == 1
    assert "1 video(s) cannot be decoded" in result.output and "broken.mp4" in result.output


# ---------------------------------------------------------------- sampling and views
def test_segment_sampling():
    rng = random.Random(0)
    for _ in range(20):
        idx = segment_indices(100, 8, True, rng)
        assert all(int(12.5 * t) <= i < 12.5 * (t + 1) for t, i in enumerate(idx))
    assert segment_indices(100, 4, False) == [12, 37, 62, 87]
    assert segment_indices(100, 4, False, view=0, views=2) == [6, 31, 56, 81]
    short = segment_indices(3, 8, True, rng)
    assert short == sorted(short) and max(short) <= 2  # fewer frames than segments: repeats, in time order
    assert max(segment_indices(3, 8, False)) <= 2


def test_windows_are_centred_and_clamped():
    assert windows([0, 5, 9], 5, 10) == [[0, 0, 0, 1, 2], [3, 4, 5, 6, 7], [7, 8, 9, 9, 9]]


def test_test_views_are_clips_times_crops(tmp_path):
    from composer.data.datasets import Item

    write_video(tmp_path / "a.mp4", frames=16, size=48)
    ds = ClipDataset([Item(tmp_path / "a.mp4", 0)], ClipConfig(frames=4, size=32, clips=2, crops=3), train=False)
    assert ds[0]["video"].shape == (6, 4, 3, 32, 32)
    windowed = ClipDataset([Item(tmp_path / "a.mp4", 0)], ClipConfig(frames=4, size=32, window=5), train=True)
    assert windowed[0]["video"].shape == (4, 5, 3, 32, 32)


def test_a_clip_is_the_same_every_time_for_a_seed_and_epoch(tmp_path):
    from composer.data.datasets import Item

    write_video(tmp_path / "a.mp4", frames=16, size=48)
    ds = ClipDataset([Item(tmp_path / "a.mp4", 0)], ClipConfig(frames=4, size=32), train=True, seed=3)
    first = ds[0]
    assert first["video"].dtype == torch.uint8  # a quarter of float32's bytes between processes
    assert torch.equal(first["video"], ds[0]["video"]) and torch.equal(first["colour"], ds[(0, 0)]["colour"])
    later = ds[(1, 0)]  # the epoch comes with the index
    assert not torch.equal(first["video"], later["video"]) or not torch.equal(first["colour"], later["colour"])


# ---------------------------------------------------------------- protocols
def _index(per_class=4, classes=4):
    from pathlib import Path

    from composer.data.datasets import DatasetIndex, Item

    items = [Item(Path(f"{c}_{i}.mp4"), c) for c in range(classes) for i in range(per_class)]
    return DatasetIndex("x", Path("."), [f"c{c}" for c in range(classes)], {"train": items, "test": list(items)})


def test_few_shot_takes_k_per_class_reproducibly():
    a = few_shot(_index(), 2, seed=5)
    b = few_shot(_index(), 2, seed=5)
    assert [i.path for i in a.train.items] == [i.path for i in b.train.items]
    assert sorted(i.label for i in a.train.items) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert [i.path for i in few_shot(_index(), 2, seed=6).train.items] != [i.path for i in a.train.items]
    with pytest.raises(DataError, match="fewer than 5 training videos"):
        few_shot(_index(), 5, seed=0)


def test_base_to_novel_splits_classes_and_remaps_labels():
    task = base_to_novel(_index(classes=5))
    assert task.train.classes == ["c0", "c1", "c2"] and task.tests["novel"].classes == ["c3", "c4"]
    assert {i.label for i in task.tests["novel"].items} == {0, 1}
    assert {i.label for i in task.train.items} == {0, 1, 2}
    assert harmonic_mean(80.0, 60.0) == pytest.approx(68.571, abs=1e-3)


def test_zero_shot_needs_a_target():
    with pytest.raises(DataError, match="--eval-dataset"):
        make_task("zero-shot", _index())


def test_the_demo_answers_differ_per_class_in_every_ftp_tier(demo_root):
    """A tier whose answer is the same sentence for every class gives FTP's InfoNCE identical targets: no gradient,
    and that tier's processor learns nothing (issue 19)."""
    import json

    answers = json.loads((demo_root / "ftp_answers.json").read_text())
    for tier in ("category", "components", "description", "context"):
        assert len({a[tier] for a in answers.values()}) == len(answers), tier
