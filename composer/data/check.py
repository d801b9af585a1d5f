"""The one data-checking path: `composer data check` and `composer run` both index a dataset with
`load_dataset` and look at its videos with `check_videos`, so they report the same problems, in file
order, each once, with the path and a one-line reason.

What a run does with each kind of problem (docs/data.md):
- index problems (a split line naming a missing video, a bad label, a malformed line) stop a run before it
  starts; `--skip-missing` skips missing videos instead;
- a video that cannot be opened is skipped in training and, in testing, scored as wrong (it stays in the
  denominator);
- a video shorter than the T frames a spec samples is handled by the short-video policy: `loop` (default,
  as MMAction2 does: frame indices wrap around, 0 1 2 0 1 2 ...) or `skip` (treated as undecodable).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from composer.data.datasets import DatasetIndex, Item, load_dataset
from composer.data.protocols import Task
from composer.data.scan import ScanCache, scan_videos
from composer.errors import DataError

SHORT_POLICIES = ("loop", "skip")
DEFAULT_SHORT = "loop"

SHORT_SAYS = {"loop": "their frames are repeated in a loop, as MMAction2 does",
              "skip": "skipped in training, scored as wrong in testing"}


@dataclass
class CheckReport:
    dataset: str
    root: str = ""
    videos: int = 0  # indexed
    checked: int = 0  # opened (and decoded with decode=True)
    cached: int = 0  # of those, remembered from the scan cache (composer/data/scan.py) instead of opened
    frames: int | None = None  # T, the frames a spec samples (short videos are flagged against it)
    short_policy: str = DEFAULT_SHORT
    index: list[str] = field(default_factory=list)  # file:line: reason, file order
    bad: list[str] = field(default_factory=list)  # path: reason, index order
    short: list[str] = field(default_factory=list)  # path: N frame(s), index order
    stop: str | None = None  # why nothing further could be checked

    @property
    def ok(self) -> bool:
        return not (self.index or self.bad or self.short or self.stop)

    def problems(self) -> list[str]:
        """Every problem line, in the order they are reported."""
        return self.index + self.bad + self.short

    def text(self) -> str:
        lines = [f"{self.dataset} at {self.root}: {self.videos} video(s) indexed, {self.checked} checked"]
        if self.stop:
            lines.append(self.stop)
        if self.index:
            lines.append(f"{len(self.index)} problem(s) in the index (a run stops on them; --skip-missing skips "
                         "missing videos):")
            lines += [f"  {p}" for p in self.index]
        if self.bad:
            lines.append(f"{len(self.bad)} video(s) cannot be decoded (skipped in training, scored as wrong in "
                         "testing):")
            lines += [f"  {p}" for p in self.bad]
        if self.short:
            lines.append(f"{len(self.short)} video(s) shorter than the {self.frames} frames sampled "
                         f"(--short-videos {self.short_policy}: {SHORT_SAYS[self.short_policy]}):")
            lines += [f"  {p}" for p in self.short]
        if self.ok:
            lines.append("no problems found")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"videos": self.videos, "checked": self.checked, "frames": self.frames,
                "short_videos": self.short_policy, "index_problems": self.index, "undecodable": self.bad,
                "short": self.short}


def check_videos(report: CheckReport, items: Iterable[Item], decode: bool,
                 advance: Callable[[], None] | None = None, workers: int = 1,
                 cache: ScanCache | None = None) -> CheckReport:
    """Open every video once (a video listed in two splits counts once), `workers` at a time, or take what the
    scan cache remembers of it; with `decode`, also decode its first, middle and last frames. Fills
    report.bad and report.short, in index order."""
    paths = list(dict.fromkeys(item.path for item in items))
    results, report.cached = scan_videos(paths, decode, workers, cache, advance)
    for path, (count, problem) in zip(paths, results):
        report.checked += 1
        if problem is not None:
            report.bad.append(problem)
        elif report.frames and count < report.frames:
            report.short.append(f"{path}: {count} frame(s)")
    return report


def check_task(task: Task, index: DatasetIndex, frames: int, short_policy: str, workers: int, cache_dir: Path,
               say: Callable[[str], None], scan: bool = True) -> CheckReport:
    """A run's check of its data: every video of the task opened once, as `composer data check --no-decode`
    does (`workers` at a time; what the scan cache in `cache_dir` remembers is not opened again), with the
    cache's notes and the count said. `scan=False` (a run's processes but the main one) opens nothing."""
    items = [*task.train.items, *(i for part in task.tests.values() for i in part.items)]
    report = CheckReport(index.name, str(index.root), videos=len({i.path for i in items}), frames=frames,
                         short_policy=short_policy, index=list(index.problems))
    if not scan:
        return report
    start = time.perf_counter()
    cache = ScanCache.for_dataset(index.name, index.root, cache_dir)
    check_videos(report, items, decode=False, workers=workers, cache=cache)
    for note in cache.notes:
        say(note)
    say(f"{report.checked} video(s) checked in {time.perf_counter() - start:.2f} s ({report.cached} remembered by "
        "the scan cache)")
    return report


def check_dataset(name: str, root, split: int, decode: bool, frames: int | None = None,
                  short_policy: str = DEFAULT_SHORT, advance_factory=None, workers: int = 1,
                  say: Callable[[str], None] | None = None) -> CheckReport:
    """`composer data check`: every index problem, then every video problem (no stop at the first). The scan
    cache in the dataset folder is used and updated when the folder can be written; `say` gets its notes."""
    report = CheckReport(name, str(root), frames=frames, short_policy=short_policy)
    try:
        index = load_dataset(name, root, split, skip_missing=True, strict=False)
    except DataError as e:
        report.stop = str(e)
        return report
    report.root = str(index.root)
    report.index = list(index.problems)
    items = [item for part in index.splits.values() for item in part]
    report.videos = len({item.path for item in items})
    advance = advance_factory(report.videos) if advance_factory else None
    cache = ScanCache.for_dataset(index.name, index.root)
    check_videos(report, items, decode, advance, workers, cache)
    for note in cache.notes if say else ():
        say(note)
    return report
