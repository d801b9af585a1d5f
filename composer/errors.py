"""Spec errors that point at the spec.

Every mistake a user can make in a spec ends as a `SpecError`: a list of problems, each with a source
location (file:line:col), what was found, what was expected and an optional hint. The CLI prints them
with the offending source line and exits with status 2; nothing else in the pipeline raises for a
spec mistake, so a Python traceback always means a bug in composer, never in the spec.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Loc:
    """A place in a source: 1-based line and column; `length` is how many characters to underline."""

    file: str
    line: int
    col: int
    length: int = 1
    text: str | None = None  # the source line, for sources that are not files (e.g. --set)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass
class Problem:
    message: str
    loc: Loc | None = None
    expected: str | None = None
    hint: str | None = None


@dataclass
class SpecError(Exception):
    """One or more problems in a spec. Raised by every stage of the compiler for user mistakes."""

    problems: list[Problem] = field(default_factory=list)

    def __init__(self, message: str | list[Problem], loc: Loc | None = None,
                 expected: str | None = None, hint: str | None = None):
        if isinstance(message, list):
            self.problems = message
        else:
            self.problems = [Problem(message, loc, expected, hint)]
        super().__init__(str(self))

    def __str__(self) -> str:
        shown = [format_problem(p) for p in self.problems[:MAX_SHOWN]]
        if len(self.problems) > MAX_SHOWN:
            shown.append(f"... and {len(self.problems) - MAX_SHOWN} more errors (the first {MAX_SHOWN} are shown)")
        return "\n".join(shown)


MAX_SHOWN = 50  # problems printed for one spec (docs/language.md, Limits): a file of mistakes answers at once
MAX_QUOTED = 120  # characters of a source line quoted under an error


_SOURCES: dict[str, str] = {}
_LINES: dict[str, list[str]] = {}


def remember_source(file: str, text: str) -> None:
    """Keep the text of a source that is not a file on disk (or may change), so errors can quote it."""
    _SOURCES[file] = text
    _LINES.pop(file, None)


def _source_line(loc: Loc) -> str | None:
    if loc.text is None and loc.file in _SOURCES:
        if loc.file not in _LINES:
            _LINES[loc.file] = _SOURCES[loc.file].splitlines() or [""]
        lines = _LINES[loc.file]
        return lines[min(max(loc.line, 1), len(lines)) - 1]
    if loc.text is not None:
        lines = loc.text.splitlines() or [""]
        return lines[min(loc.line, len(lines)) - 1]
    try:
        lines = Path(loc.file).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    if 1 <= loc.line <= len(lines):
        return lines[loc.line - 1]
    return None


def format_problem(p: Problem) -> str:
    """Render one problem as `file:line:col: error: message`, the source line, a caret and hints."""
    head = f"{p.loc}: error: {p.message}" if p.loc else f"error: {p.message}"
    out = [head]
    if p.loc:
        src = _source_line(p.loc)
        if src is not None:
            src, col = _window(src, p.loc.col)
            gutter = f"{p.loc.line:>5} | "
            out.append(gutter + src)
            width = max(1, min(p.loc.length, max(1, len(src) - col + 1)))
            out.append(" " * (len(gutter) - 2) + "| " + " " * (col - 1) + "^" * width)
    if p.expected:
        out.append(f"  expected: {p.expected}")
    if p.hint:
        out.append(f"  hint: {p.hint}")
    return "\n".join(out)


def _window(src: str, col: int) -> tuple[str, int]:
    """At most MAX_QUOTED characters of a long source line around column `col` (1-based), and the new column."""
    if len(src) <= MAX_QUOTED:
        return src, col
    start = max(0, min(col - 1 - MAX_QUOTED // 3, len(src) - MAX_QUOTED))
    text = src[start:start + MAX_QUOTED]
    if start > 0:
        text = "..." + text[3:]
    if start + MAX_QUOTED < len(src):
        text = text[:-3] + "..."
    return text, col - start


def cut(text: str, most: int = 80) -> str:
    """A user's value as a message quotes it: whole, or its start (a 5000-character name is one line)."""
    return text if len(text) <= most else text[:most - 3] + "..."


def did_you_mean(word: str, choices) -> str | None:
    """A 'did you mean' hint for a misspelt name, or None when nothing is close."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


class DataError(Exception):
    """A problem with the data a run was given (a dataset, a class-text file): reported, never a traceback."""
