"""One permission policy for everything composer writes into a run directory.

Files are 0666 and folders 0777, less the user's umask (with the usual umask 022: 0644 and 0755), the
same as any file a program creates. Writers that go through a temporary file (mkstemp makes it 0600)
call `share` before publishing it, so an atomically written file ends with the same mode as the others.
"""

from __future__ import annotations

import os
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


def file_mode() -> int:
    return 0o666 & ~_umask()


def folder_mode() -> int:
    return 0o777 & ~_umask()


def share(path: str | Path) -> None:
    """Give `path` (a file, or a folder) the run directory's mode."""
    os.chmod(path, folder_mode() if Path(path).is_dir() else file_mode())
