"""Checkpoint directories: one verified unit, published with one atomic rename.

checkpoints/
    latest                  the name of the newest published checkpoint, one line (written atomically)
    step-00000040/          a published checkpoint (named by the global optimiser step; -2, -3 ... on a repeat)
        weights.safetensors     the trainable tensors (a self-verifying trainable-only file)
        state.safetensors       optimiser tensors and random-generator states (absent when not resumable)
        state.json              progress, optimiser structure, scheduler, Python and NumPy generators, meta
        manifest.json           SHA-256 and size of every file above, format, composer version, stage, epoch,
                                step, model fingerprint, seed, tiny-weights recipe, and its own SHA-256
    step-00000048/
    best.safetensors        the best epoch's trainable-only file (never pruned)
    .tmp-step-.../          a save that never finished: ignored on load, removed by the next save

A save writes every file into `.tmp-<name>-<token>/`, fsyncs each file and the directory, renames it to
its final name (one atomic step), fsyncs `checkpoints/`, then rewrites `latest` (temporary file, fsync,
rename). Until that rename the previous checkpoint is the latest and untouched; old ones are pruned
only after `latest` names the new one. Loading verifies the manifest against every file, so a
checkpoint is either whole and as it was written, or refused with the file and the reason.
A symlink for `latest` would do the same on POSIX, but a small file also survives copying a run
directory to filesystems and archives that drop or rewrite links.
"""

from __future__ import annotations

import errno
import hashlib
import json
import re
import secrets
import shutil
from pathlib import Path
from typing import Any

from composer.errors import DataError
from composer.files import atomic_write_bytes, file_sha256, fsync_dir, write_file
from composer.version import composer_version

FORMAT = 1
WEIGHTS = "weights.safetensors"
STATE_TENSORS = "state.safetensors"
STATE_JSON = "state.json"
FILES = (WEIGHTS, STATE_TENSORS, STATE_JSON)  # what a checkpoint holds besides its manifest, and nothing else
MANIFEST = "manifest.json"
LATEST = "latest"
TEMPORARY = ".tmp-"
_NAME = re.compile(r"step-(\d{8,})(?:-(\d+))?")


def _order(path: Path) -> tuple[int, int]:
    match = _NAME.fullmatch(path.name)
    return int(match[1]), int(match[2] or 1)


def published(folder: Path) -> list[Path]:
    """The published checkpoints in `folder`, oldest first (temporary directories are not among them)."""
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if p.is_dir() and _NAME.fullmatch(p.name)), key=_order)


def latest_checkpoint(folder: Path) -> Path | None:
    """The checkpoint `latest` names; the newest published one if `latest` was never written (a save
    interrupted between its rename and the pointer); None when there is none."""
    pointer = folder / LATEST
    if not pointer.is_file():
        found = published(folder)
        return found[-1] if found else None
    try:
        name = pointer.read_bytes()[:200].decode("utf-8", errors="replace").strip()
    except OSError as e:
        raise DataError(f"{pointer} cannot be read ({e.strerror or e})") from None
    if not _NAME.fullmatch(name) or not (folder / name).is_dir():
        raise DataError(f"{pointer} names {_show(name)}, which is not a checkpoint in {folder}"
                        + _previous_offer(folder, None))
    return folder / name


def _show(value: Any) -> str:
    """A value read from a file, short enough for a one-line message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _manifest_digest(manifest: dict[str, Any]) -> str:
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def position(manifest: dict[str, Any], stage: bool = False) -> str:
    """A checkpoint's place in training, as people count it: `epoch E[, batch B], step S` (with the stage's name
    first when `stage`)."""
    batch = manifest.get("batch")
    short = lambda key: str(manifest.get(key))[:60]  # noqa: E731  (read from a file: kept to one line)
    return ((f"stage {short('stage')}, " if stage else "") + f"epoch {short('epoch')}"
            + (f", batch {short('batch')}" if batch else "") + f", step {short('step')}")


def describe(path: Path, manifest: dict[str, Any] | None = None) -> str:
    """`path (epoch E, step S)` for messages, `path (epoch E, batch B, step S)` inside an epoch (epochs from 1)."""
    try:
        manifest = manifest or json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        return f"{path} ({position(manifest)})"
    except (OSError, ValueError, RecursionError, AttributeError):  # unreadable, or not a JSON object
        return str(path)


def read_manifest(path: Path) -> dict[str, Any]:
    """A checkpoint directory's manifest, checked to have the layout this composer writes (not yet against
    its files): a JSON object whose `files` lists exactly FILES, each with a SHA-256 and a size, and whose
    records are of the types publish writes. Raises DataError naming the field."""
    where = path / MANIFEST
    try:
        manifest = json.loads(where.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        raise DataError(f"{where} is not a readable checkpoint manifest") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise DataError(f"{where} is not a readable checkpoint manifest (no 'files' object)")
    if manifest.get("format") != FORMAT or type(manifest.get("format")) is not int:
        raise DataError(f"{path} was written by composer {_show(manifest.get('composer', 'unknown'))} in checkpoint "
                        f"format {_show(manifest.get('format'))}; this composer ({composer_version()}) reads format "
                        f"{FORMAT}")
    if sorted(manifest["files"]) != sorted(FILES):
        raise DataError(f"{where} lists the files {_show(sorted(manifest['files']))}; a checkpoint holds exactly "
                        f"{', '.join(FILES)}, in its own folder")
    for name, entry in manifest["files"].items():
        if not (isinstance(entry, dict) and isinstance(entry.get("sha256"), str)
                and type(entry.get("bytes")) is int and entry["bytes"] >= 0):
            raise DataError(f"{where}: the entry of {name} is {_show(entry)}, not its sha256 and bytes")
    for key, kinds in (("fingerprint", (str,)), ("resumable", (bool,)), ("epoch", (int, type(None))),
                       ("step", (int, type(None))), ("stage", (str, int, type(None)))):
        value = manifest.get(key)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise DataError(f"{where}: its {key!r} is {_show(value)}, not what composer writes there")
    return manifest


def verify_checkpoint(path: Path) -> dict[str, Any]:
    """Check a checkpoint directory against its manifest (layout, format, its own checksum, every file present
    in the directory itself, not a link out of it, with its size and SHA-256); return the manifest. Raises
    DataError naming the file and the reason."""
    path = Path(path)
    if not (path / MANIFEST).is_file():
        raise DataError(f"{path} is not a composer checkpoint directory (no {MANIFEST})")
    manifest = read_manifest(path)
    if manifest.get("manifest_sha256") != _manifest_digest(manifest):
        raise DataError(f"{path / MANIFEST} was changed after it was written (its SHA-256 does not match); "
                        "refusing the checkpoint")
    for name, entry in manifest["files"].items():
        file = path / name
        if not file.is_file():
            raise DataError(f"{file} is missing: the checkpoint is incomplete")
        if file.is_symlink() or file.resolve().parent != path.resolve():
            raise DataError(f"{file} is a link; a checkpoint's files must be in its own folder")
        if file.stat().st_size != entry["bytes"]:
            raise DataError(f"{file} is {file.stat().st_size} bytes, the manifest says {entry['bytes']}: "
                            "the file was truncated or changed after it was written")
        if file_sha256(file) != entry["sha256"]:
            raise DataError(f"{file} is corrupted: its SHA-256 differs from the manifest's (the file changed "
                            "after it was written)")
    return manifest


def _previous_offer(folder: Path, failed: Path | None, to_use: str | None = None) -> str:
    """'; the previous checkpoint ... verifies: ...' for a refusal of `failed` (None: of the pointer).
    `to_use`: how to use it, for a command that names its checkpoint (default: rewrite `latest`, as resume)."""
    candidates = [p for p in published(folder) if p != failed and (failed is None or _order(p) < _order(failed))]
    for candidate in reversed(candidates):
        try:
            manifest = verify_checkpoint(candidate)
        except DataError:
            continue
        how = to_use.format(candidate) if to_use else (f"to continue from it, write its name into {folder / LATEST} "
                                                       f"(echo {candidate.name} > {folder / LATEST})")
        return f"; the previous checkpoint {describe(candidate, manifest)} verifies: {how}"
    return "; no earlier checkpoint in the folder verifies"


def refuse_with_offer(folder: Path, failed: Path, error: DataError, to_use: str | None = None) -> DataError:
    """The refusal of `failed`, with the previous checkpoint that verifies offered (never used silently)."""
    return DataError(f"{error}{_previous_offer(folder, failed, to_use)}")


def in_run_folder(checkpoint: Path) -> bool:
    """Whether `checkpoint` is a published checkpoint in a run's checkpoints folder (others may precede it)."""
    return bool(_NAME.fullmatch(checkpoint.name))


def _new_name(folder: Path, step: int) -> str:
    name, n = f"step-{step:08d}", 2
    while (folder / name).exists():
        name, n = f"step-{step:08d}-{n}", n + 1
    return name


def _clean(folder: Path) -> None:
    """Remove what interrupted saves left: temporary directories and pointer files."""
    for p in folder.iterdir():
        if p.name.startswith(TEMPORARY) and p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        elif p.name.startswith(f".{LATEST}.") and p.name.endswith(".tmp"):
            p.unlink(missing_ok=True)


def _prune(folder: Path, new: Path, previous: Path | None, keep: int) -> None:
    """Keep `new`, the checkpoint it replaced and the newest others up to `keep` in all."""
    kept = {new} | ({previous} if previous is not None and keep > 1 else set())
    for p in reversed(published(folder)):
        if len(kept) >= keep:
            break
        kept.add(p)
    for p in published(folder):
        if p not in kept:
            shutil.rmtree(p, ignore_errors=True)


def publish(folder: Path, files: dict[str, bytes], record: dict[str, Any], keep: int = 2) -> Path:
    """Write `files` and their manifest (with `record`: stage, epoch, step, fingerprint, ...) as one new
    checkpoint in `folder`, point `latest` at it and prune to `keep`; return its path. An OSError (a full
    disk, an I/O error) becomes a DataError that names the previous checkpoint, which stays the latest."""
    if keep < 1:
        raise ValueError("keep must be at least 1")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        previous = latest_checkpoint(folder)
    except DataError:  # a broken pointer: the new checkpoint replaces it
        previous = None
    _clean(folder)
    name = _new_name(folder, int(record.get("step") or 0))
    tmp, final = folder / f"{TEMPORARY}{name}-{secrets.token_hex(4)}", folder / name
    renamed = False
    try:
        tmp.mkdir()
        entries = {n: {"sha256": write_file(tmp / n, data), "bytes": len(data)} for n, data in files.items()}
        manifest = {"format": FORMAT, "composer": composer_version(), **record, "files": entries}
        manifest["manifest_sha256"] = _manifest_digest(manifest)
        write_file(tmp / MANIFEST, json.dumps(manifest, indent=2).encode())
        fsync_dir(tmp)
        tmp.rename(final)
        renamed = True
        fsync_dir(folder)
        atomic_write_bytes(folder / LATEST, f"{name}\n".encode())
    except OSError as e:
        pointer = folder / LATEST
        if not (renamed and pointer.is_file() and pointer.read_text(encoding="utf-8").strip() == name):
            shutil.rmtree(final if renamed else tmp, ignore_errors=True)  # never leave `latest` dangling
        reason = e.strerror or (errno.errorcode.get(e.errno, "") if e.errno else "") or str(e)
        kept = (f"the previous checkpoint {describe(previous)} is intact and resumable" if previous
                else "no earlier checkpoint exists")
        raise DataError(f"could not write checkpoint {final}: {reason}; {kept}") from None
    _prune(folder, final, previous, keep)
    return final
