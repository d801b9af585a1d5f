"""`composer data check`: the dataset's index problems and every video that cannot be decoded, before a
long run finds them one batch at a time."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import track

from composer.data.datasets import load_dataset
from composer.data.video import BadVideo, frame_count, open_video, read_frames
from composer.errors import DataError


@dataclass
class CheckReport:
    dataset: str
    videos: int = 0
    index_problem: str | None = None
    missing: list[str] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.index_problem or self.missing or self.bad)

    def text(self) -> str:
        lines = [f"{self.dataset}: {self.videos} video(s) checked"]
        if self.index_problem:
            lines.append(self.index_problem)
        if self.missing:
            lines.append(f"{len(self.missing)} missing video(s):")
            lines += [f"  {m}" for m in self.missing]
        if self.bad:
            lines.append(f"{len(self.bad)} video(s) cannot be decoded (a run skips them):")
            lines += [f"  {b}" for b in self.bad]
        if self.ok:
            lines.append("no problems found")
        return "\n".join(lines)


def check_dataset(name: str, root, split: int, skip_missing: bool, decode: bool, console: Console) -> CheckReport:
    report = CheckReport(name)
    try:
        index = load_dataset(name, root, split, skip_missing=True)
    except DataError as e:
        report.index_problem = str(e)
        return report
    report.missing = list(index.missing)
    items = [item for part in index.splits.values() for item in part]
    report.videos = len(items)
    if decode:
        for item in track(items, description="decoding", console=console, transient=True):
            try:
                decoder = open_video(item.path)
                count = frame_count(decoder)
                read_frames(decoder, sorted({0, count // 2, count - 1}), item.path)
            except BadVideo as e:
                report.bad.append(f"{item.source}: {e}")
    return report
