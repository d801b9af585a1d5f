"""Where a person's comments belong, so `composer fmt` can write them back in either syntax.

A comment is found by position, then attached to an entry (a mapping key, a list item or a statement)
by line: a comment alone on its line goes *before* the next entry that starts on a later line; a comment
after code goes *after* the outermost entry that starts on its line. A comment with no entry after it
trails the document. Attaching by path (not by line number) is what lets the comment survive a change of
syntax, where every line moves.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import Any

from composer.spec.document import Comment, Path, SourceMap

Found = tuple[int, int, str]  # line, column (both 1-based), the comment from its '#'
Anchor = tuple[int, int, Path]  # where an entry starts, and its path


def yaml_comments(text: str, tokens: Iterable[Any]) -> list[Found]:
    """The comments of a YAML text, given its tokens (`yaml.scan`). PyYAML drops comments, but every other
    character belongs to a token (quoted and block scalars included), so a '#' in a gap between tokens
    starts a comment."""
    starts = [0]
    for i, ch in enumerate(text):
        if ch == "\n":
            starts.append(i + 1)
    found: list[Found] = []
    at = 0
    for token in tokens:
        end = starts[token.start_mark.line] + token.start_mark.column if token.start_mark.line < len(starts) \
            else len(text)
        _gap(text, at, end, starts, found)
        if getattr(token, "style", None) in ("|", ">"):  # a comment on a block scalar's `|` line is in the token
            stop = text.find("\n", end)
            header = text[end: len(text) if stop == -1 else stop]
            if "#" in header:
                found.append((token.start_mark.line + 1, token.start_mark.column + 1 + header.index("#"),
                              header[header.index("#"):].rstrip()))
        mark = token.end_mark
        at = max(at, starts[mark.line] + mark.column if mark.line < len(starts) else len(text))
    _gap(text, at, len(text), starts, found)
    return found


def _gap(text: str, begin: int, end: int, starts: list[int], found: list[Found]) -> None:
    i = text.find("#", begin, end)
    while i != -1:
        stop = text.find("\n", i, end)
        stop = end if stop == -1 else stop
        line = bisect.bisect_right(starts, i) - 1
        found.append((line + 1, i - starts[line] + 1, text[i:stop].rstrip()))
        i = text.find("#", stop, end)


def anchors(where: SourceMap) -> list[Anchor]:
    """Where each entry starts: mapping keys, and list items (which have no key)."""
    out = [(loc.line, loc.col, path) for path, loc in where.keys.items() if path]
    out += [(loc.line, loc.col, path) for path, loc in where.values.items() if path and isinstance(path[-1], int)]
    return out


def attach(found: list[Found], entries: list[Anchor]) -> tuple[dict[Path, Comment], list[str]]:
    """Comments by the path of the entry they belong to, and the comments after the last entry."""
    first: dict[int, tuple[int, Path]] = {}  # line -> the outermost entry starting on it
    for line, col, path in sorted(entries, key=lambda a: (a[0], a[1], len(a[2]))):
        first.setdefault(line, (col, path))
    lines = sorted(first)
    comments: dict[Path, Comment] = {}
    trailing: list[str] = []
    for line, col, text in sorted(found):
        here = first.get(line)
        if here is not None and here[0] < col and comments.get(here[1], Comment()).after is None:
            comments.setdefault(here[1], Comment()).after = text
            continue
        i = bisect.bisect_right(lines, line)
        if i == len(lines):
            trailing.append(text)
        else:
            comments.setdefault(first[lines[i]][1], Comment()).before.append(text)
    return comments, trailing
