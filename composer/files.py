"""Durable writes: a file is fully on disk (fsynced) before anything points at it.

Every byte composer writes for a checkpoint goes through `write_file`, and its one system call through
`_write_chunk`, so a full disk or an I/O error surfaces as an OSError at a known place (tests inject
faults there). Files are created with mode 0o666 filtered by the process umask, like any file a user's
program writes (0644 under the usual umask 022), never with mkstemp's private 0600.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path
from typing import Callable

CHUNK = 1 << 20


def _write_chunk(fd: int, data: memoryview) -> int:
    """The one system call that writes checkpoint bytes."""
    return os.write(fd, data)


def write_file(path: Path, data: bytes) -> str:
    """Create `path` (it must not exist), write `data`, fsync it; return the SHA-256 of `data`."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[_write_chunk(fd, view[:CHUNK]):]
        os.fsync(fd)
    finally:
        os.close(fd)
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in blocks (checkpoints can be gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[str], object]) -> None:
    """Call write(tmp_path), fsync it, then rename over `path` (same directory, so the rename is atomic).
    On any error the temporary file is removed and `path` is untouched."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        write(str(tmp))
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """`atomic_write` of bytes through `write_file`."""
    atomic_write(path, lambda tmp: write_file(Path(tmp), data))
