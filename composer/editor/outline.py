"""Where the cursor is in a YAML spec that may not parse: the path of keys around it, read from indentation
and flow brackets, as a person reads an unfinished file. The language server completes, hovers and jumps
from this; only diagnostics need the whole spec to parse."""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

_KEY = re.compile(r"^(\s*)(?:-\s+)?([A-Za-z_][\w.+-]*)\s*:(?:\s+(.*))?$")
_WORD = re.compile(r"[A-Za-z0-9_.+/\-\[\]*,]+")


@dataclass(frozen=True)
class Entry:
    """One block-style key: its path from the root, where it is (0-based line and column) and its value text."""

    path: tuple[str, ...]
    line: int
    col: int
    value: str


def outline(text: str) -> list[Entry]:
    """Every block-style key of `text`, with its path (lines that are no key are skipped)."""
    entries: list[Entry] = []
    stack: list[tuple[int, str]] = []
    for i, line in enumerate(text.splitlines()):
        m = _KEY.match(line)
        if not m or line.lstrip().startswith("#"):
            continue
        indent = len(m.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = tuple(k for _, k in stack) + (m.group(2),)
        entries.append(Entry(path, i, indent, _strip_comment(m.group(3) or "")))
        stack.append((indent, m.group(2)))
    return entries


def _strip_comment(value: str) -> str:
    return re.sub(r"\s+#.*$", "", value).strip()


def value_at(entries: list[Entry], path: tuple[str, ...]) -> object:
    """The value written at `path`, block style or inside a parent's flow mapping; None when not found."""
    for entry in entries:
        if entry.path == path:
            return _plain(entry.value)
        if entry.path == path[:len(entry.path)] and entry.value.startswith("{"):
            node = _plain(entry.value)
            for key in path[len(entry.path):]:
                node = node.get(key) if isinstance(node, dict) else None
            if node is not None:
                return node
    return None


def _plain(text: str) -> object:
    try:
        return yaml.safe_load(text) if text else None
    except yaml.YAMLError:
        return text


@dataclass(frozen=True)
class Context:
    """What the cursor is on: a key to write under `path`, or the value of `path`'s last key."""

    path: tuple[str, ...]
    is_value: bool
    typed: str  # the part of the word before the cursor


def context(text: str, line: int, col: int) -> Context:
    """The completion context at 0-based `line`, `col`."""
    lines = text.splitlines() or [""]
    current = lines[line] if line < len(lines) else ""
    prefix = current[:col]
    typed = re.search(r"[\w.+/\-\[\]*,]*$", prefix).group(0)
    indent = len(prefix) - len(prefix.lstrip())
    parents = [e for e in outline("\n".join(lines[:line])) if e.col < indent]
    path = _open_path(parents, indent)
    m = _KEY.match(prefix)
    if not m:
        return Context(path, False, typed)
    path += (m.group(2),)
    rest = prefix[m.end(2):].lstrip()[1:]  # after the colon
    inner, is_value = _flow(rest)
    return Context(path + inner, is_value, typed)


def _open_path(entries: list[Entry], indent: int) -> tuple[str, ...]:
    """The path of the innermost key still open at `indent` (the last one above it with less indentation)."""
    for entry in reversed(entries):
        if entry.col < indent:
            return entry.path
    return ()


def _flow(rest: str) -> tuple[tuple[str, ...], bool]:
    """Inside `key: {a: {b: x, c: |`: the keys opened by flow mappings (a) and whether the cursor is on a
    value (after `c:`) or on a key."""
    opened: list[str | None] = []
    key: str | None = None
    token = ""
    is_value = True
    depth_lists = 0
    for ch in rest:
        if ch == "{":
            opened.append(key)
            key, token, is_value = None, "", False
        elif ch == "}":
            if opened:
                opened.pop()
            key, token = None, ""
        elif ch == "[":
            depth_lists += 1
        elif ch == "]":
            depth_lists = max(0, depth_lists - 1)
        elif ch == ":" and not depth_lists:
            key, token, is_value = token.strip(), "", True
        elif ch == "," and not depth_lists:
            if opened:
                key, is_value = None, False
            token = ""
        else:
            token += ch
    inner = tuple(k for k in opened if k)
    return (inner + (key,), True) if key and is_value else (inner, is_value and not opened)


def word_at(text: str, line: int, col: int) -> str:
    """The word under the cursor (names, sizes such as ViT-B/16, sites)."""
    lines = text.splitlines()
    if line >= len(lines):
        return ""
    for m in _WORD.finditer(lines[line]):
        if m.start() <= col <= m.end():
            return m.group(0).strip(",")
    return ""
