"""The limits of what a user gives composer: a spec file, and the command-line options and files about it.

A spec is small (the largest shipped one is a few kilobytes), so these bounds are far above any real
spec and low enough that no input can hang the front end, exhaust the stack or the memory. Each is
checked before the work it protects (size before reading, depth and alias expansion before composing
the YAML tree, digits before converting a number), and each failure is a located `SpecError`.
The second group bounds what the commands spend on a shared machine (worker processes, views, classes,
sweep runs, overrides); they live here, at the bottom layer, because the spec, the data and the run
layers each check some of them. docs/language.md ("Limits") lists them all; change both together.
"""

from __future__ import annotations

import math
import re
import stat
from pathlib import Path as FsPath
from typing import TYPE_CHECKING, Any

from composer.errors import Loc, SpecError

if TYPE_CHECKING:  # the command line reads these limits at start-up: the IR (pydantic) is imported only to check
    from composer.spec.ir import Spec

MAX_FILE_BYTES = 1 << 20  # 1 MiB per spec file
MAX_DEPTH = 64  # nested mappings/lists/brackets
MAX_NODES = 100_000  # values in one document, counting every alias expansion (billion laughs)
MAX_NUMBER_CHARS = 40  # characters in one written number
MAX_EXTENDS = 16  # files in one `extends` chain
MAX_ERRORS = 50  # problems shown for one spec; the rest are counted
MAX_INT = 2**63 - 1  # integers must fit 64 bits
MAX_BATCH_BYTES = 1 << 50  # one global batch of input video as float32, and a --memory-budget (1 PiB)
MAX_VIEWS = 64  # test views of one video (clips x crops; papers use at most 10 x 3)
MAX_OVERRIDES = 256  # --set, --unset (and --grid) options of one command

# what the commands spend on a shared machine
MAX_WORKERS = 64  # DataLoader worker processes (--workers), FFmpeg jobs (data prepare --jobs)
MAX_CLASSES = 100_000  # classes of a dataset or a class-names list (ImageNet-21k has 21 841)
MAX_CLASSES_FILE_BYTES = 1 << 20  # a --classes-file (1 MiB)
MAX_SWEEP_RUNS = 1000  # runs of one sweep: specs x grid values x seeds, each variant built before any run


def number(text: str, loc: Loc | None) -> int | float:
    """A written number as int or float, refused when it is too long, too large, or not finite."""
    if len(text) > MAX_NUMBER_CHARS:
        raise SpecError(f"number too long ({len(text)} characters)", loc,
                        expected=f"at most {MAX_NUMBER_CHARS} characters")
    body = text.lower()
    is_int = not any(c in body for c in ".e") or body.startswith(("0x", "0o"))
    if is_int:
        value = int(text, 0) if body.lstrip("+-")[:2] in ("0x", "0o") else int(text)
        if abs(value) > MAX_INT:
            raise SpecError(f"integer out of range: {text}", loc, expected=f"a magnitude of at most {MAX_INT}")
        return value
    value = float(text)
    if not math.isfinite(value):
        raise SpecError(f"number out of range: {text}", loc, expected="a finite number (about 1.8e308 at most)")
    return value


def check_file(path: FsPath, loc: Loc | None, what: str = "spec file", expected: str = "a .yaml/.yml or .comp file",
               max_bytes: int = MAX_FILE_BYTES) -> None:
    """Refuse what is not a regular file of at most `max_bytes`: a folder, a device, a FIFO, a symlink loop."""
    try:
        info = path.stat()  # follows symlinks; a loop raises
    except RuntimeError as e:  # pathlib's own symlink-loop error on some Pythons
        raise SpecError(f"cannot read {what} {path}: {e}", loc) from None
    except OSError as e:
        reason = "a symlink loop" if e.errno == 40 else (e.strerror or str(e))
        raise SpecError(f"cannot read {what} {path}: {reason}", loc) from None
    if stat.S_ISDIR(info.st_mode):
        raise SpecError(f"{what} {path} is a folder", loc, expected=expected)
    if not stat.S_ISREG(info.st_mode):
        raise SpecError(f"{what} {path} is not a regular file (a device, FIFO or socket)", loc, expected=expected)
    if info.st_size > max_bytes:
        raise SpecError(f"{what} {path} is {info.st_size} bytes", loc,
                        expected=f"at most {max_bytes} bytes ({max_bytes >> 20} MiB)")


def check_size(text: str, file: str) -> None:
    """Refuse spec text over the size limit (for text that did not come from `check_file`)."""
    if len(text) > MAX_FILE_BYTES:
        raise SpecError(f"spec is {len(text)} characters long", Loc(file, 1, 1),
                        expected=f"at most {MAX_FILE_BYTES} characters")


def empty(file: str) -> SpecError:
    """The error for a document with nothing in it: an empty spec builds nothing, so it is never meant."""
    return SpecError("the spec is empty", Loc(file, 1, 1),
                     expected="at least one section (backbones, components, flow, ...) or `extends`")


def within(path: FsPath, roots: list[FsPath]) -> bool:
    """Whether `path` (resolved) lies inside one of `roots` (resolved)."""
    return any(path == r or r in path.parents for r in roots)


_OPEN, _CLOSE = "([{", ")]}"


def check_text_depth(text: str, file: str) -> None:
    """Bracket nesting of the text syntax, outside strings and comments (lark's trees are walked recursively)."""
    depth, line, col0 = 0, 1, 0
    for m in re.finditer(r'"(?:\\.|[^"\\\n])*"|#[^\n]*|[()\[\]{}\n]', text):
        ch = m.group()
        if ch == "\n":
            line, col0 = line + 1, m.end()
        elif ch in _OPEN:
            depth += 1
            if depth > MAX_DEPTH:
                raise SpecError(f"nesting deeper than {MAX_DEPTH} levels", Loc(file, line, m.start() - col0 + 1),
                                expected=f"at most {MAX_DEPTH} nested brackets")
        elif ch in _CLOSE:
            depth = max(0, depth - 1)


def check_views(clips: int, crops: int) -> str | None:
    """Why clips x crops test views of each video are too many, or None."""
    if clips * crops > MAX_VIEWS:
        return (f"{clips} clips x {crops} crops = {clips * crops} views of every test video, more than "
                f"{MAX_VIEWS} (papers use at most 10 x 3)")
    return None


def batch_bytes(spec: Spec, batch_size: int) -> tuple[str, int, int] | None:
    """The largest video input's one batch of `batch_size` clips (test views included) as float32:
    (input name, bytes, bytes per clip); None for a spec without video."""
    from composer.spec.ir import VideoInput  # lazy: pydantic's IR only here; commands read limits at start-up

    views = spec.train.views.clips * spec.train.views.crops
    sizes = [(name, video.frames * video.window * 3 * video.size ** 2 * 4 * views)
             for name, video in spec.inputs.items() if isinstance(video, VideoInput)]
    if not sizes:
        return None
    name, per_clip = max(sizes, key=lambda s: s[1])
    return name, batch_size * per_clip, per_clip


def check_batch(spec: Spec, batch_size: int, option: str) -> str | None:
    """Why a batch size given as an option (`--batch-size`) is more than any machine holds, or None; checked
    before any tensor of that size is priced (torch cannot even describe one past 2^63 elements)."""
    found = batch_bytes(spec, batch_size)
    if found is None or found[1] <= MAX_BATCH_BYTES:
        return None
    name, total, per_clip = found
    return (f"{option} {batch_size}: one batch of '{name}' would be {total:.3g} bytes ({per_clip} bytes per clip "
            f"as float32), more than any machine holds (at most {MAX_BATCH_BYTES:.3g} bytes, 1 PiB)")


def depth(value: Any) -> int:
    """Levels of a document value as the YAML check counts them (a scalar 1, a mapping or list one more than
    its deepest entry), walked with a stack: the value may be deeper than Python's recursion limit."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(node, dict):
            stack.extend((child, level + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, level + 1) for child in node)
    return deepest


def check_path(path: tuple[Any, ...], value: Any, loc: Loc | None) -> None:
    """Refuse a dotted path (`set`, `delete`, `--set`, `--unset`) that would nest the document deeper than
    MAX_DEPTH with its value: each name is one mapping, made without any bracket or YAML indentation, so
    neither reader's depth check sees it (and every later walk over the document recurses)."""
    levels = len(path) + depth(value)
    if levels > MAX_DEPTH:
        shown = ".".join(map(str, path[:3])) + (".…" if len(path) > 3 else "")
        raise SpecError(f"the path {shown} ({len(path)} names) nests {levels} levels deep", loc,
                        expected=f"at most {MAX_DEPTH} nested mappings and lists")


def check_sizes(spec: Spec) -> None:
    """Refuse a spec whose test views are too many, or whose one batch of video (train.batch_size clips as
    float32) no machine could hold."""
    train = spec.train
    views = check_views(train.views.clips, train.views.crops)
    if views is not None:
        raise SpecError(views, spec.loc_of("train", "views"), expected=f"at most {MAX_VIEWS} views")
    found = batch_bytes(spec, train.batch_size)
    if found is not None and found[1] > MAX_BATCH_BYTES:
        name, total, per_clip = found
        raise SpecError(f"one batch of '{name}' is {total:.3g} bytes ({train.batch_size} clips x "
                        f"{per_clip} bytes each as float32), more than any machine holds",
                        spec.loc_of("train", "batch_size"),
                        expected=f"at most {MAX_BATCH_BYTES:.3g} bytes per batch (1 PiB)")
