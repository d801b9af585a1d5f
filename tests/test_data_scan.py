"""The up-front scan remembered between runs (composer/data/scan.py): a second scan opens nothing, a file whose
time or size changed (or a new one) is opened again and nothing else, a damaged cache is ignored with one line
and rebuilt, a read-only dataset folder falls back to a cache beside the runs, and the threads give the
report in index order. Budget: ~15 s (a few 8-frame videos, two Runs built without training)."""

import json
import os

import pytest
from conftest import write_video
from rich.console import Console
from test_data_check import SMALL, broken

from composer.data import scan
from composer.data.check import CheckReport, check_videos
from composer.data.datasets import load_dataset
from composer.train.run import Run, RunOptions


@pytest.fixture
def videos(tmp_path):
    """Four good videos (one of 2 frames), one that is not a video; their paths in order."""
    root = tmp_path / "data"
    for i in range(3):
        write_video(root / f"v{i}.mp4", frames=8, seed=i)
    write_video(root / "short.mp4", frames=2, seed=9)
    (root / "notes.mp4").write_text("not a video")
    return root, [root / n for n in ("v0.mp4", "notes.mp4", "v1.mp4", "short.mp4", "v2.mp4")]


@pytest.fixture
def opened(monkeypatch):
    """The videos the scan opens, in any order."""
    calls = []
    real = scan.probe

    def counting(path, decode):
        calls.append(path.name)
        return real(path, decode)

    monkeypatch.setattr(scan, "probe", counting)
    return calls


def _scan(root, paths, decode=False, workers=2, fallback=None):
    cache = scan.ScanCache.for_dataset("list", root, fallback)
    results, hits = scan.scan_videos(paths, decode, workers, cache)
    return results, hits, cache.notes


def test_a_second_scan_opens_nothing_and_says_the_same(videos, opened):
    root, paths = videos
    first, hits, notes = _scan(root, paths)
    assert hits == 0 and sorted(opened) == sorted(p.name for p in paths) and notes == []
    assert [frames for frames, _ in first] == [8, None, 8, 2, 8]
    assert first[1][1].startswith(f"{paths[1]}: ")
    assert (root / scan.CACHE_NAME).is_file()
    opened.clear()
    second, hits, notes = _scan(root, paths)
    assert (second, hits, opened, notes) == (first, 5, [], [])


def test_a_changed_time_or_size_or_a_new_file_is_opened_again_and_nothing_else(videos, opened):
    root, paths = videos
    first, _, _ = _scan(root, paths)
    stat = paths[0].stat()
    os.utime(paths[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched: same content, new time
    paths[2].write_bytes(paths[2].read_bytes()[:300])  # truncated: another size, and no longer a video
    write_video(root / "new.mp4", frames=8, seed=5)
    opened.clear()
    again, hits, _ = _scan(root, paths + [root / "new.mp4"])
    assert sorted(opened) == ["new.mp4", "v0.mp4", "v1.mp4"] and hits == 3
    assert again[0] == first[0] and again[2][1] is not None and again[5] == (8, None)


def test_decoding_is_remembered_apart_from_opening(videos, opened):
    root, paths = videos
    _scan(root, paths, decode=False)
    opened.clear()
    _, hits, _ = _scan(root, paths, decode=True)  # opened before, never decoded: decoded now
    assert hits == 1 and sorted(opened) == sorted(p.name for p in paths if p.name != "notes.mp4")
    opened.clear()
    _, hits, _ = _scan(root, paths, decode=False)
    assert hits == 5 and opened == []


@pytest.mark.parametrize("damage", ["truncated", "checksum", "format"])
def test_a_damaged_cache_is_ignored_with_one_line_and_rebuilt(videos, opened, damage):
    root, paths = videos
    first, _, _ = _scan(root, paths)
    place = root / scan.CACHE_NAME
    text = place.read_text()
    if damage == "truncated":
        place.write_text(text[: len(text) // 2])
    elif damage == "checksum":  # valid JSON that lies: the good video 'v0' says it cannot be opened
        data = json.loads(text)
        data["entries"]["v0.mp4"][3] = "moov atom not found"
        place.write_text(json.dumps(data))
    else:
        place.write_text(json.dumps(json.loads(text) | {"format": scan.FORMAT + 1}))
    opened.clear()
    again, hits, notes = _scan(root, paths)
    assert again == first and hits == 0 and len(opened) == 5
    assert len(notes) == 1 and str(place) in notes[0] and "scanned again" in notes[0]
    opened.clear()
    _, hits, notes = _scan(root, paths)  # rebuilt: trusted again
    assert hits == 5 and notes == [] and opened == []


def test_a_read_only_dataset_folder_keeps_its_cache_beside_the_runs(videos, opened, monkeypatch, tmp_path):
    root, paths = videos
    real = scan.atomic_write

    def read_only(path, write):
        if path.parent == root:
            raise PermissionError(13, "Permission denied")
        return real(path, write)

    monkeypatch.setattr(scan, "atomic_write", read_only)
    runs = tmp_path / "runs" / ".scan-cache"
    _, _, notes = _scan(root, paths, fallback=runs)
    assert notes == [] and not (root / scan.CACHE_NAME).exists() and len(list(runs.glob("list-*.json"))) == 1
    opened.clear()
    _, hits, _ = _scan(root, paths, fallback=runs)
    assert hits == 5 and opened == []
    results, _, notes = _scan(root, paths)  # no place beside the runs either: said once, the scan still stands
    assert len(notes) == 1 and "could not be written" in notes[0] and str(root) in notes[0]
    assert [frames for frames, _ in results] == [8, None, 8, 2, 8]


def test_threads_report_in_index_order_as_one_thread_does(tmp_path):
    root = broken(tmp_path / "a", bad_label=False)
    index = load_dataset("list", root, skip_missing=True)
    items = [*index.splits["train"], *index.splits["test"]]
    reports = []
    for workers in (1, 3):
        (root / scan.CACHE_NAME).unlink(missing_ok=True)
        reports.append(check_videos(CheckReport("list", frames=4), items, decode=True, workers=workers,
                                    cache=scan.ScanCache.for_dataset("list", root)))
    assert reports[0].bad == reports[1].bad and reports[0].short == reports[1].short and reports[0].bad


def test_a_second_run_on_a_dataset_opens_none_of_its_videos(tmp_path, opened):
    root = broken(tmp_path / "data", bad_label=False)
    options = RunOptions(dataset="list", data_root=str(root), tiny=True, skip_missing=True, workers=2,
                         sets=list(SMALL), out=str(tmp_path / "runs"), log_with=["none"], device="cpu")
    first = Run("specs/baselines/clip-adapter.yaml", options, console=Console(quiet=True))
    count = len(opened)
    second = Run("specs/baselines/clip-adapter.yaml", options, console=Console(quiet=True))
    assert count == first.data_report.checked > 0 and first.data_report.cached == 0
    assert len(opened) == count and second.data_report.cached == second.data_report.checked
    assert second.data_report.to_json() == first.data_report.to_json()
    assert "remembered by the scan cache" in (second.dir / "run.log").read_text()


def test_a_prepared_copy_does_not_take_the_sources_scan_cache(videos):
    from composer.data.prepare import find_files

    root, paths = videos
    _scan(root, paths)
    found, others = find_files(root)
    assert scan.CACHE_NAME not in {p.name for p in found + others} and len(found) == len(paths)
