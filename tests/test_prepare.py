"""`composer data prepare`: the copy keeps the layout and split files (same index), decodes to the same frames
within encoding error, resumes, reports a corrupt video while the rest completes, refuses an unwritable target
up front, and never leaves a half-written file under a video's name (injected failures, a full disk)."""

import subprocess
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from composer.cli import main
from composer.data import prepare
from composer.data.datasets import load_dataset
from composer.data.video import frame_count, open_video, read_frames


def smooth_video(path, seed: int, frames: int = 16) -> None:
    """An mp4 of 48x64 smooth waves that move a lot between frames (so frames are told apart after resizing)."""
    from torchcodec.encoders import VideoEncoder

    y, x = torch.meshgrid(torch.linspace(0, 1, 48), torch.linspace(0, 1, 64), indexing="ij")
    t = torch.arange(frames).view(-1, 1, 1, 1)
    phase = torch.tensor([0.0, 2.1, 4.2]).view(1, 3, 1, 1) + seed
    clip = 127 + 100 * torch.sin(6.28 * (1.3 * x + 0.7 * y) + 1.9 * t + phase)
    VideoEncoder(clip.to(torch.uint8), frame_rate=8).to_file(str(path))


def ucf_like(root):
    """A small UCF101-layout dataset: 4 videos of 16 frames at 48x64 (shorter side 48), its split files."""
    names = ["ApplyLipstick/v_ApplyLipstick_g01_c01.avi", "ApplyLipstick/v_ApplyLipstick_g02_c01.avi",
             "Archery/v_Archery_g01_c01.avi", "Archery/v_Archery_g02_c01.avi"]
    for seed, name in enumerate(names):
        path = root / "UCF-101" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        smooth_video(path.with_suffix(".mp4"), seed)  # then into AVI with one keyframe, as UCF101 ships
        subprocess.run(["ffmpeg", "-loglevel", "error", "-nostdin", "-y", "-i", str(path.with_suffix(".mp4")),
                        "-c:v", "mpeg4", "-q:v", "2", "-g", "250", str(path)], check=True)
        path.with_suffix(".mp4").unlink()
    lists = root / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 ApplyLipstick\n2 Archery\n")
    (lists / "trainlist01.txt").write_text(f"{names[0]} 1\n{names[2]} 2\n")
    (lists / "testlist01.txt").write_text(f"{names[1]}\n{names[3]}\n")
    return root


def run(*args):
    return CliRunner().invoke(main, ["data", "prepare", *map(str, args)])


def test_copy_keeps_layout_index_and_frames(tmp_path):
    source, copy = ucf_like(tmp_path / "ucf"), tmp_path / "copy"
    result = run("--data-root", source, "--out", copy, "--short-side", 32, "--keyframe-every", 4,
                 "--dataset", "ucf101", "--jobs", 2)
    assert result.exit_code == 0, result.output
    assert "4 transcoded" in result.output and "indexes like the source" in result.output
    for rel in ("ucfTrainTestlist/classInd.txt", "ucfTrainTestlist/trainlist01.txt", "ucfTrainTestlist/testlist01.txt"):
        assert (copy / rel).read_bytes() == (source / rel).read_bytes()
    raw, ready = load_dataset("ucf101", source), load_dataset("ucf101", copy)
    assert raw.classes == ready.classes
    for split in ("train", "test"):
        assert [(i.path.relative_to(source), i.label) for i in raw.splits[split]] == \
               [(i.path.relative_to(copy), i.label) for i in ready.splits[split]]
    item = raw.splits["train"][0]
    raw_frames = read_frames(open_video(item.path), list(range(16))).float()
    decoder = open_video(copy / item.path.relative_to(source))
    assert frame_count(decoder) == 16
    frames = read_frames(decoder, list(range(16))).float()
    assert frames.shape[-2:] == (32, 42)  # shorter side 32, aspect kept, even width
    resized = torch.nn.functional.interpolate(raw_frames, size=(32, 42), mode="area")
    error = (frames - resized).abs().mean()
    assert error < 10, error  # encoding, chroma subsampling and resizing error only (measured 6.9)
    shifted = torch.roll(resized, 1, dims=0)
    assert (frames - shifted).abs().mean() > 8 * error  # the neighbouring frame is far


def test_resume_skips_finished_videos_and_refuses_other_settings(tmp_path, monkeypatch):
    source, copy = ucf_like(tmp_path / "ucf"), tmp_path / "copy"
    assert run("--data-root", source, "--out", copy, "--short-side", 32).exit_code == 0
    victim = copy / "UCF-101/Archery/v_Archery_g02_c01.avi"
    victim.unlink()  # lost from the copy: the next run redoes it and only it
    calls = []
    real = prepare.run_ffmpeg
    monkeypatch.setattr(prepare, "run_ffmpeg", lambda command: calls.append(command[-1]) or real(command))
    result = run("--data-root", source, "--out", copy, "--short-side", 32)
    assert result.exit_code == 0, result.output
    assert "1 transcoded, 3 already prepared" in result.output and len(calls) == 1 and victim.is_file()
    result = run("--data-root", source, "--out", copy, "--short-side", 320)
    assert result.exit_code == 2 and "short_side 32 (now 320)" in result.output


def test_corrupt_video_reported_and_the_rest_completes(tmp_path):
    source, copy = ucf_like(tmp_path / "ucf"), tmp_path / "copy"
    bad = source / "UCF-101/Archery/v_Archery_g01_c01.avi"
    bad.write_bytes(bad.read_bytes()[:300])  # truncated
    result = run("--data-root", source, "--out", copy, "--short-side", 32, "--dataset", "ucf101")
    assert result.exit_code == 1
    lines = [line.strip() for line in result.output.splitlines() if line.startswith("  ")]
    assert lines[0].startswith("UCF-101/Archery/v_Archery_g01_c01.avi: ") and len(lines[0]) > 45
    assert "train: UCF-101/Archery/v_Archery_g01_c01.avi (label 1) is not in the copy" in lines
    assert "3 transcoded" in result.output
    assert (copy / prepare.STATE / "failures.txt").read_text().startswith("UCF-101/Archery/v_Archery_g01_c01.avi: ")
    assert not (copy / "UCF-101/Archery/v_Archery_g01_c01.avi").exists()
    assert not [p for p in copy.rglob("*") if p.name.endswith(".tmp")]


def test_unwritable_or_overlapping_target_refused_up_front(tmp_path):
    source = ucf_like(tmp_path / "ucf")
    blocker = tmp_path / "file"
    blocker.write_text("")
    for out, said in ((blocker / "copy", "cannot write to"), (source / "copy", "overlaps the data root"),
                      (tmp_path, "overlaps the data root")):
        result = run("--data-root", source, "--out", out)
        assert result.exit_code == 2 and said in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
    assert not (source / "copy").exists()


@pytest.mark.parametrize("stderr, stops", [("Killed", False), ("Error writing trailer: No space left on device", True)])
def test_injected_failure_mid_transcode_leaves_nothing_finished_looking(tmp_path, monkeypatch, stderr, stops):
    source, copy = ucf_like(tmp_path / "ucf"), tmp_path / "copy"
    real = prepare.run_ffmpeg

    def half(command):  # the first video: FFmpeg writes part of its output and dies
        if command[command.index("-i") + 1].endswith("v_ApplyLipstick_g01_c01.avi"):
            real(command)
            output = Path(command[-1])
            output.write_bytes(output.read_bytes()[: output.stat().st_size // 2])
            return 1, stderr
        return real(command)

    monkeypatch.setattr(prepare, "run_ffmpeg", half)
    result = run("--data-root", source, "--out", copy, "--short-side", 32, "--jobs", 1)
    assert result.exit_code == 1
    assert "ApplyLipstick/v_ApplyLipstick_g01_c01.avi: " in result.output
    assert not (copy / "UCF-101/ApplyLipstick/v_ApplyLipstick_g01_c01.avi").exists()
    assert not [p for p in copy.rglob("*") if p.name.endswith(".tmp")]
    finished = list(copy.rglob("*.avi"))
    assert ("stopped: the disk is full" in result.output) == stops
    assert len(finished) == (0 if stops else 3)  # a full disk stops at once (one job); anything else goes on
    for path in finished:
        assert frame_count(open_video(path)) == 16
    monkeypatch.setattr(prepare, "run_ffmpeg", real)
    result = run("--data-root", source, "--out", copy, "--short-side", 32)
    assert result.exit_code == 0 and f"{4 - len(finished)} transcoded" in result.output
