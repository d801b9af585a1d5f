"""`composer data prepare`: transcode a dataset once into a seek-friendly copy.

Downloaded videos usually hold one keyframe per several seconds, so reading 8 sparse frames decodes
almost the whole file. The copy has a keyframe every few frames, the shorter side at 256 (or 320) pixels,
a constant frame rate and H.264 (FFmpeg's libx264), so a sampled frame costs a few decoded frames. The
layout is kept: every video keeps its relative path and name, every other file (split lists, CSV, JSON)
is copied as it is, so `--data-root` simply points at the copy and every dataset parser reads it.

Safety, in the order things can go wrong:
- the target is checked before any work (writable, not inside the source or around it);
- each video is written to a hidden temporary name (`.NAME.prepare-XXXX.tmp`, never a video suffix, so no
  parser picks it up), opened again with composer's own decoder, and only then renamed to its name: a
  file with a video's name in the copy is always complete;
- a video that FFmpeg cannot decode from start to end (`-xerror`) is reported and left out of the copy;
  the rest completes; a full disk stops the run (nothing else could be written) with what is left;
- finished videos are appended to `.composer-prepare/done.jsonl` (with their source's size and time),
  so a second run skips them and redoes only what is missing, failed or changed.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import shutil
import subprocess
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from composer.data.datasets import load_dataset
from composer.data.scan import CACHE_NAME
from composer.data.video import BadVideo, frame_count, open_video
from composer.errors import DataError

STATE = ".composer-prepare"  # the copy's bookkeeping folder: settings.json, done.jsonl, failures.txt
FORMAT = 1  # the layout of the bookkeeping; a copy made with another is not resumed
TEMP = re.compile(r"^\..+\.prepare-[0-9a-f]{8}\.tmp$")
# The container FFmpeg writes for each suffix. A .webm file cannot hold H.264, so it gets Matroska (which
# WebM is a subset of) under its own name: SSv2's parser looks for <id>.webm and FFmpeg reads by content.
MUXERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "matroska", ".avi": "avi"}
DISK_FULL = "No space left on device"


@dataclass(frozen=True)
class PrepareOptions:
    """What the copy looks like (`settings`: a copy is only resumed with the same ones) and how fast it is made."""

    short_side: int = 256  # pixels; a smaller source is not upscaled
    keyframe_every: int = 8  # frames between keyframes (-g)
    fps: float | None = None  # constant frame rate; None keeps the source's
    crf: int = 18  # libx264 quality (lower: closer to the source, larger files)
    preset: str = "fast"
    jobs: int = 0  # videos transcoded at once; 0: one per core

    def settings(self) -> dict:
        kept = asdict(self)
        kept.pop("jobs")
        return {"format": FORMAT, **kept}


@dataclass
class PrepareReport:
    source: Path
    target: Path
    videos: int = 0  # found in the source
    transcoded: int = 0  # this run
    skipped: int = 0  # already prepared by an earlier run
    copied: int = 0  # other files copied (unchanged ones are not counted)
    failed: list[str] = field(default_factory=list)  # "relative/path: reason"
    frames_changed: list[str] = field(default_factory=list)  # "relative/path: N -> M frames"
    stop: str | None = None  # why the run stopped before the end (a full disk)

    @property
    def left(self) -> int:
        return self.videos - self.transcoded - self.skipped - len(self.failed)

    @property
    def ok(self) -> bool:
        return not (self.failed or self.stop)

    def text(self) -> str:
        lines = [f"{self.source} -> {self.target}: {self.videos} video(s): {self.transcoded} transcoded, "
                 f"{self.skipped} already prepared, {len(self.failed)} failed; {self.copied} other file(s) copied"]
        if self.stop:
            lines.append(f"stopped: {self.stop}; {self.left} video(s) not done; run the same command again to "
                         "resume")
        if self.failed:
            lines.append(f"{len(self.failed)} video(s) could not be transcoded and are not in the copy (listed in "
                         f"{self.target / STATE / 'failures.txt'}; `composer run --skip-missing` skips them):")
            lines += [f"  {line}" for line in self.failed]
        if self.frames_changed:
            lines.append(f"{len(self.frames_changed)} video(s) have another frame count than their source (a "
                         "variable frame rate made constant, or --fps):")
            lines += [f"  {line}" for line in self.frames_changed]
        return "\n".join(lines)


# ---------------------------------------------------------------- what is where
def find_files(source: Path) -> tuple[list[Path], list[Path]]:
    """(videos, other files) under `source`, as sorted relative paths, without composer's own bookkeeping (a
    scan cache describes the source's files, not the copy's)."""
    videos, others = [], []
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if STATE in rel.parts or TEMP.match(path.name) or path.name == CACHE_NAME or not path.is_file():
            continue
        (videos if path.suffix.lower() in MUXERS else others).append(rel)
    return videos, others


def check_target(source: Path, target: Path) -> None:
    """Refuse, before any work, a target that cannot hold the copy."""
    if not source.is_dir():
        raise DataError(f"data root not found: {source}")
    src, dst = source.resolve(), target.resolve()
    if src == dst or src in dst.parents or dst in src.parents:
        raise DataError(f"--out {target} overlaps the data root {source}: give a folder outside it")
    try:
        (dst / STATE).mkdir(parents=True, exist_ok=True)
        probe = dst / STATE / f".probe-{secrets.token_hex(4)}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise DataError(f"cannot write to {target} ({e.strerror or e}): give a folder you can write to") from None


def check_settings(target: Path, options: PrepareOptions) -> None:
    """A copy is resumed only with the settings it was started with; otherwise two kinds of video would mix."""
    path = target / STATE / "settings.json"
    wanted = options.settings()
    if path.exists():
        try:
            had = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            had = {}
        if had != wanted:
            differ = ", ".join(f"{k} {had.get(k)!r} (now {v!r})" for k, v in wanted.items() if had.get(k) != v)
            raise DataError(f"{target} holds a copy prepared with other settings: {differ}; give the same "
                            "settings to resume it, or another --out")
        return
    _replace(path, json.dumps(wanted, indent=2).encode())


def finished(target: Path) -> dict[str, dict]:
    """The videos earlier runs finished: relative path -> record (a line cut short by a crash is ignored)."""
    path = target / STATE / "done.jsonl"
    records = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
                records[record["path"]] = record
            except (ValueError, KeyError, TypeError):
                continue
    return records


def _stamp(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def is_done(record: dict | None, source: Path, output: Path) -> bool:
    """Prepared earlier from this very source file, and still there."""
    if record is None or not output.is_file():
        return False
    return {k: record.get(k) for k in ("size", "mtime_ns")} == _stamp(source)


def remove_temporaries(target: Path) -> None:
    """Delete the temporary files an interrupted run left behind (they never look finished, but take space)."""
    for path in target.rglob(".*.tmp"):
        if TEMP.match(path.name) and path.is_file():
            path.unlink()


# ---------------------------------------------------------------- one file
def _temporary(output: Path) -> Path:
    return output.parent / f".{output.name}.prepare-{secrets.token_hex(4)}.tmp"


def _replace(path: Path, data: bytes) -> None:
    tmp = path.parent / f".{path.name}.prepare-{secrets.token_hex(4)}.tmp"
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def ffmpeg_command(source: Path, output: Path, suffix: str, options: PrepareOptions, threads: int) -> list[str]:
    """The FFmpeg call for one video: first video stream only (no audio), stored orientation kept (composer
    decodes stored pixels), shorter side scaled down to `short_side` (even sizes, aspect kept), constant frame
    rate, H.264 with a keyframe every `keyframe_every` frames. AVI gets no B-frames: torchcodec seeks wrong frames
    in AVI files with B-frames (measured: 255-level differences)."""
    s = options.short_side
    scale = (f"scale=w='if(lte(iw,ih),trunc(min({s},iw)/2)*2,-2)'"
             f":h='if(lte(iw,ih),-2,trunc(min({s},ih)/2)*2)'")
    rate = ["-r", f"{options.fps:g}"] if options.fps else []
    return ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-xerror", "-noautorotate",
            "-threads", str(threads), "-i", str(source), "-map", "0:v:0", "-an", "-sn", "-dn", "-vf", scale,
            "-fps_mode", "cfr", *rate, "-c:v", "libx264", "-preset", options.preset, "-crf", str(options.crf),
            "-g", str(options.keyframe_every), "-keyint_min", str(options.keyframe_every), "-sc_threshold", "0",
            *(["-bf", "0"] if suffix == ".avi" else []), "-pix_fmt", "yuv420p", "-threads", str(threads),
            *(["-movflags", "+faststart"] if MUXERS[suffix] in ("mp4", "mov") else []),
            "-f", MUXERS[suffix], "-y", str(output)]


def run_ffmpeg(command: list[str]) -> tuple[int, str]:
    """The one place FFmpeg runs (tests inject failures here): exit status and its error output."""
    done = subprocess.run(command, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          errors="replace")
    return done.returncode, done.stderr


class Failed(Exception):
    """One file could not be prepared; `disk_full` stops the whole run."""

    def __init__(self, reason: str, disk_full: bool = False) -> None:
        super().__init__(reason)
        self.disk_full = disk_full


def _ffmpeg_reason(stderr: str, source: Path) -> str:
    """FFmpeg's last error line, without its `[decoder @ 0x...]` tag or the source path (reported already)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if not lines:
        return "ffmpeg failed without a message"
    line = re.sub(r"^\[[^\]]*@ 0x[0-9a-f]+\]\s*", "", lines[-1])
    return line.removeprefix(f"{source}: ")


def transcode(source: Path, output: Path, options: PrepareOptions, threads: int) -> tuple[int | None, int]:
    """Transcode one video to `output` through a temporary file; return (frames in the source, frames in the
    copy). On any failure nothing is left at `output` or at the temporary name."""
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(output)
    try:
        status, stderr = run_ffmpeg(ffmpeg_command(source, tmp, source.suffix.lower(), options, threads))
        if status != 0:
            raise Failed(_ffmpeg_reason(stderr, source), disk_full=DISK_FULL in stderr)
        try:
            frames = frame_count(open_video(tmp))
        except BadVideo as e:
            raise Failed(f"the transcoded copy does not decode ({str(e).split(': ', 1)[-1]})") from None
        try:
            before: int | None = frame_count(open_video(source))
        except BadVideo:
            before = None
        os.replace(tmp, output)
        return before, frames
    except OSError as e:
        raise Failed(e.strerror or str(e), disk_full=e.errno == errno.ENOSPC) from None
    finally:
        tmp.unlink(missing_ok=True)


def copy_file(source: Path, output: Path) -> bool:
    """Copy a non-video file (split list, CSV, JSON) as it is, through a temporary name; False when an identical
    copy (same size and modification time) is already there."""
    if output.is_file() and _stamp(output) == _stamp(source):
        return False
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(output)
    try:
        shutil.copy2(source, tmp)
        os.replace(tmp, output)
    except OSError as e:
        raise Failed(e.strerror or str(e), disk_full=e.errno == errno.ENOSPC) from None
    finally:
        tmp.unlink(missing_ok=True)
    return True


# ---------------------------------------------------------------- the whole copy
def prepare_dataset(source: str | Path, target: str | Path, options: PrepareOptions = PrepareOptions(),
                    advance_factory: Callable[[int], Callable[[], None]] | None = None) -> PrepareReport:
    """Make (or complete) the seek-friendly copy of `source` in `target`; see the module docstring."""
    source, target = Path(source), Path(target)
    if shutil.which("ffmpeg") is None:
        raise DataError("ffmpeg not found: install FFmpeg (`apt-get install ffmpeg`; `make setup` does it)")
    check_target(source, target)
    check_settings(target, options)
    remove_temporaries(target)
    videos, others = find_files(source)
    report = PrepareReport(source, target, videos=len(videos))
    advance = advance_factory(len(videos)) if advance_factory else (lambda: None)
    for rel in others:
        try:
            report.copied += copy_file(source / rel, target / rel)
        except Failed as e:
            report.failed.append(f"{rel}: {e}")
            if e.disk_full:
                report.stop = f"the disk of {target} is full"
                _write_failures(target, report)
                return report
    done = finished(target)
    todo = []
    for rel in videos:
        if is_done(done.get(rel.as_posix()), source / rel, target / rel):
            report.skipped += 1
            advance()
        else:
            todo.append(rel)
    try:
        _transcode_all(source, target, todo, options, report, advance)
    finally:
        _write_failures(target, report)
    return report


def _transcode_all(source: Path, target: Path, todo: list[Path], options: PrepareOptions, report: PrepareReport,
                   advance: Callable[[], None]) -> None:
    """Transcode `todo` on `options.jobs` threads (default: one per core), FFmpeg's threads sharing the cores;
    each finished video is logged at once (done.jsonl), and a stop (a full disk) queues nothing more."""
    cores = os.cpu_count() or 1
    jobs = min(options.jobs or cores, max(1, len(todo)))
    threads = max(1, cores // jobs)
    with (target / STATE / "done.jsonl").open("a", encoding="utf-8") as log, \
            ThreadPoolExecutor(max_workers=jobs) as pool:
        pending: dict[Future, Path] = {}
        queue = iter(todo)
        for rel in queue:  # at most `jobs` queued, so a stop leaves the rest untouched
            pending[pool.submit(transcode, source / rel, target / rel, options, threads)] = rel
            if len(pending) >= jobs:
                break
        while pending:
            ready, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in ready:
                rel = pending.pop(future)
                _finish(future, rel, source, report, log)
                advance()
                nxt = None if report.stop else next(queue, None)
                if nxt is not None:
                    pending[pool.submit(transcode, source / nxt, target / nxt, options, threads)] = nxt


def _finish(future: Future, rel: Path, source: Path, report: PrepareReport, log) -> None:
    try:
        before, after = future.result()
    except Failed as e:
        report.failed.append(f"{rel}: {e}")
        if e.disk_full:
            report.stop = "the disk is full"
        return
    report.transcoded += 1
    if before is not None and before != after:
        report.frames_changed.append(f"{rel}: {before} -> {after} frames")
    try:
        log.write(json.dumps({"path": rel.as_posix(), **_stamp(source / rel), "frames": after}) + "\n")
        log.flush()
    except OSError as e:  # the video is complete, but a later run will not know it and redo it
        report.stop = f"cannot record finished videos in {log.name} ({e.strerror or e})"


def _write_failures(target: Path, report: PrepareReport) -> None:
    try:
        _replace(target / STATE / "failures.txt", "".join(f"{line}\n" for line in report.failed).encode())
    except OSError:
        pass  # a full disk: the failures are printed anyway


def compare_indexes(dataset: str, source: str | Path, target: str | Path, split: int = 1) -> list[str]:
    """How the copy's index differs from the source's under `dataset`'s parser (videos by relative path, labels,
    classes, flips); empty when they are the same. Videos that failed show here as missing from the copy."""
    def entries(root: str | Path):
        index = load_dataset(dataset, root, split, skip_missing=True, strict=False)
        base = index.root
        splits = {name: [(item.path.relative_to(base).as_posix(), item.label) for item in items]
                  for name, items in index.splits.items()}
        return index.classes, index.flip, splits

    classes, flip, splits = entries(source)
    copy_classes, copy_flip, copy_splits = entries(target)
    differences = []
    if classes != copy_classes:
        differences.append(f"classes differ: {len(classes)} in the source, {len(copy_classes)} in the copy")
    if flip != copy_flip:
        differences.append("flips differ")
    for name in sorted(set(splits) | set(copy_splits)):
        have, got = splits.get(name, []), copy_splits.get(name, [])
        lost = sorted(set(have) - set(got))
        differences += [f"{name}: {path} (label {label}) is not in the copy" for path, label in lost]
        extra = sorted(set(got) - set(have))
        differences += [f"{name}: {path} (label {label}) is only in the copy" for path, label in extra]
    return differences
