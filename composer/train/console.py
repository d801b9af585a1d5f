"""What a run says, on the console and in RUN_DIR/run.log.

A terminal gets rich's live progress bars; anything else (a file, a pipe, a batch job's log) gets one
plain line per N steps instead of nothing until the end. run.log always gets the plain lines and every
message, so a run's console output can be read afterwards.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class RunLog:
    """Prints to the console and appends the same text, without colours or bars, to `path` (when given:
    the main process only)."""

    def __init__(self, console: Console, path: Path | None = None) -> None:
        self.console = console
        self.file = None
        self.plain = None
        if path is not None:
            self.file = open(path, "a", encoding="utf-8", buffering=1)  # line-buffered: readable while running
            self.plain = Console(file=self.file, force_terminal=False, no_color=True, width=120, soft_wrap=True)

    def print(self, *objects: Any) -> None:
        self.console.print(*objects)
        self.to_file(*objects)

    def to_file(self, *objects: Any) -> None:
        if self.plain is not None:
            self.plain.print(*objects)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file, self.plain = None, None


class Bars:
    """The subset of rich.progress.Progress a run uses (add_task, update), shown as live bars on a terminal
    and as one line per `every` steps (default: every tenth of the total, or 50 steps) everywhere else."""

    def __init__(self, log: RunLog, every: int | None = None) -> None:
        self.log, self.every = log, every
        self.live = _progress(log.console) if log.console.is_terminal else None
        self.tasks: dict[int, dict[str, Any]] = {}

    def __enter__(self) -> "Bars":
        if self.live is not None:
            self.live.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.stop()

    def add_task(self, description: str, total: int | None = None, **fields: Any) -> int:
        task = self.live.add_task(description, total=total, **fields) if self.live is not None else len(self.tasks)
        self.tasks[task] = {"description": description, "total": total, "start": time.perf_counter(), **fields}
        return task

    def update(self, task: int, completed: int | None = None, total: int | None = None, **fields: Any) -> None:
        if self.live is not None:
            self.live.update(task, completed=completed, total=total, **fields)
        state = self.tasks[task]
        state.update(fields)
        if total is not None:
            state["total"] = total
        if completed is None or not self._due(completed, state["total"]):
            return
        line = self._line(state, completed)
        if self.live is None:
            self.log.console.print(line, markup=False, highlight=False)
        self.log.to_file(line)

    def _due(self, done: int, total: int | None) -> bool:
        every = self.every or (max(1, total // 10) if total else 50)
        return done % every == 0 or done == total

    @staticmethod
    def _line(state: dict[str, Any], done: int) -> str:
        total = state["total"]
        line = f"{state['description']}: {done}/{total}" if total else f"{state['description']}: {done}"
        if state.get("loss", "-") != "-":
            line += f" loss {state['loss']}"
        if state.get("speed", "-") != "-":
            line += f" {state['speed']} clips/s"
        return line + f" ({time.perf_counter() - state['start']:.0f} s)"


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[speed]} clips/s"),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False)
