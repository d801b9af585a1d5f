"""Which backbone parameters exist, as data (parameters.json): whether an unfrozen backbone trains anything once
`unfrozen_except` keeps some of its parameters frozen is a question of parameter names, answered here without
building it. tests/test_shapes.py holds the file to the real builds (and rewrites it when run as a script)."""

from __future__ import annotations

import functools
import json
from fnmatch import fnmatch
from pathlib import Path

from composer.backbones.registry import Request

DATA = Path(__file__).with_name("parameters.json")


@functools.cache
def _data() -> dict:
    return json.loads(DATA.read_text())


def parameter_names(family: str, size: str, towers: list[str]) -> list[str] | None:
    """The parameter names of a `family` backbone of `size` whose other towers were dropped (as the compiler
    drops unused towers); None for a family this file does not describe (another package's)."""
    entry = _data().get(family)
    if entry is None:
        return None
    dropped = {f"model.{m}" for tower, modules in entry["tower_modules"].items() if tower not in towers
               for m in modules}
    names = [name.format(i=i) for name, count in entry["sizes"][size].items()
             for i in range(count)]
    return [n for n in names if not any(n == d or n.startswith(d + ".") for d in dropped)]


def trains(family: str, request: Request, towers: list[str], frozen_globs: list[str]) -> bool:
    """Whether an unfrozen backbone keeps a trainable parameter when `frozen_globs` (its `unfrozen_except`) are
    kept frozen: the compiler's rule (compiler/compile.py, _freeze) over the declared names."""
    if not frozen_globs:
        return True
    names = parameter_names(family, request.size, towers)
    if names is None:  # another package's family: its own build says (on the meta device)
        return True
    return any(not any(fnmatch(n, f"model.{g}*") or fnmatch(n, g) for g in frozen_globs) for n in names)
