"""Where a new run directory goes, and the check that it can be written, made before any work starts."""

from __future__ import annotations

import datetime
from pathlib import Path

from composer.errors import DataError


def check_writable(folder: Path) -> None:
    """Make `folder` and write a file in it, or refuse in one line before any work starts."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise DataError(f"cannot write the run directory {folder}: {e.strerror or e}") from None


def new_run_dir(out: str, name: str) -> Path:
    """`out`/<spec name>-<time>, with -2, -3, ... when runs start in the same second (the name is one path
    component: the spec's name is checked to be one, composer/spec/ir.py)."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = Path(out) / f"{name}-{stamp}"
    n = 2
    while folder.exists():
        folder = Path(out) / f"{name}-{stamp}-{n}"
        n += 1
    return folder
