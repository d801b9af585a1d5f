"""The up-front scan of a dataset's videos, in parallel, remembered between runs.

`composer run` (and `composer data check`) open every video of a task before anything trains. On a
Kinetics-sized set (240k videos) that is minutes to hours, at every start and every resume; yet between
two runs almost no file changes. What opening (and, for `data check`, decoding) each video found is kept
in a cache file, keyed on the file's path, size and modification time: a file whose size or time changed,
and a new file, is opened again; every other result is read back; a removed file's entry is dropped when
the cache is next written.

Where the cache lives: `ROOT/.composer-scan.json` in the dataset folder, so every run on that dataset
shares it; when the dataset folder cannot be written (a read-only share), beside the runs, in
`OUT/.scan-cache/<dataset>-<hash of ROOT>.json`. Both are read, the dataset folder's first. Writes are
atomic (a temporary file renamed over the old one). The file carries the SHA-256 of its entries and the
decoder's version: a file that does not parse, fails its checksum or was written by another format or
decoder is ignored with one line and rebuilt, never trusted.

What the key cannot see: a file rewritten with the same size within the file system's time resolution.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable

from composer.data.video import BadVideo, frame_count, open_video, read_frames
from composer.files import atomic_write

CACHE_NAME = ".composer-scan.json"
FORMAT = 1

# one video: [size, mtime_ns, frames or None, why it cannot be opened or None, decoded?, why it cannot be
# decoded or None]
Entry = list


def _decoder() -> str:
    try:
        return f"torchcodec {version('torchcodec')}"
    except PackageNotFoundError:
        return "torchcodec unknown"


def _digest(entries: dict[str, Entry]) -> str:
    return hashlib.sha256(json.dumps(entries, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass
class ScanCache:
    """The cache files of one dataset: `places` in the order they are tried (the dataset folder's first)."""

    root: Path
    places: list[Path]
    entries: dict[str, Entry] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # one line per file ignored, for the user
    changed: bool = False

    @classmethod
    def for_dataset(cls, name: str, root: Path, fallback: Path | None = None) -> "ScanCache":
        """The dataset folder's cache, and `fallback/<name>-<hash>.json` for when that folder is read-only."""
        root = Path(root)
        places = [root / CACHE_NAME]
        if fallback is not None:
            where = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:12]
            places.append(Path(fallback) / f"{name}-{where}.json")
        cache = cls(root, places)
        for place in places:
            cache.entries.update(cache._read(place))
        return cache

    def _read(self, place: Path) -> dict[str, Entry]:
        if not place.exists():
            return {}
        try:
            data = json.loads(place.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a scan cache")
            if data.get("format") != FORMAT or data.get("decoder") != _decoder():
                raise ValueError(f"written by another format ({data.get('format')}) or decoder ({data.get('decoder')})")
            entries = data["entries"]
            if not isinstance(entries, dict) or data.get("sha256") != _digest(entries):
                raise ValueError("its checksum does not match its entries")
        except (OSError, ValueError, KeyError) as e:
            self.notes.append(f"the scan cache {place} is ignored ({e}); its videos are scanned again")
            self.changed = True  # written again, replacing the damaged file
            return {}
        return entries

    def key(self, path: Path) -> str:
        """The path relative to the dataset folder (the index names videos under it), else as given."""
        text, prefix = str(path), str(self.root) + os.sep
        return text[len(prefix):] if text.startswith(prefix) else text

    def lookup(self, path: Path, stat: os.stat_result | None, decode: bool) -> tuple[int | None, str | None] | None:
        """The remembered (frames, problem) of a video whose size and time have not changed, else None."""
        entry = self.entries.get(self.key(path))
        if stat is None or not _valid(entry) or entry[:2] != [stat.st_size, stat.st_mtime_ns]:
            return None
        if entry[3] is not None:
            return None, f"{path}: {entry[3]}"
        if decode and not entry[4]:
            return None
        if decode and entry[5] is not None:
            return None, f"{path}: {entry[5]}"
        return entry[2], None

    def remember(self, path: Path, stat: os.stat_result | None, found: dict[str, Any]) -> None:
        if stat is None:  # a file that is not there is not remembered: it is checked every time
            return
        self.entries[self.key(path)] = [stat.st_size, stat.st_mtime_ns, found["frames"], found["open"],
                                        found["decoded"], found["decode"]]
        self.changed = True

    def forget_removed(self, seen: set[str]) -> None:
        """Before a write: drop the entries of files that no longer exist (an entry is only ever used after its
        file's size and time are checked, so a stale one costs space, never a wrong answer)."""
        for key in [k for k in self.entries if k not in seen]:
            if not (self.root / key).exists():
                del self.entries[key]

    def save(self) -> None:
        """Write the cache to the first place that can be written; a cache nowhere writable is only a loss
        of time, so it is said once and the scan's results still stand."""
        if not self.changed:
            return
        text = json.dumps({"format": FORMAT, "decoder": _decoder(), "sha256": _digest(self.entries),
                           "entries": self.entries}, separators=(",", ":"))
        errors = []
        for place in self.places:
            try:
                atomic_write(place, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
            except OSError as e:
                errors.append(f"{place.parent}: {e.strerror or e}")
                continue
            self.changed = False
            return
        self.notes.append(f"the scan cache could not be written ({'; '.join(errors)}); the next run scans again")


def _valid(entry: Any) -> bool:
    return (isinstance(entry, list) and len(entry) == 6 and all(isinstance(v, int) for v in entry[:2])
            and (entry[2] is None or isinstance(entry[2], int)) and isinstance(entry[4], bool)
            and all(v is None or isinstance(v, str) for v in (entry[3], entry[5])))


def _reason(path: Path, error: BadVideo) -> str:
    text = str(error)
    return text[len(f"{path}: "):] if text.startswith(f"{path}: ") else text


def probe(path: Path, decode: bool) -> dict[str, Any]:
    """Open one video (and with `decode` decode its first, middle and last frames): what was found."""
    found: dict[str, Any] = {"frames": None, "open": None, "decoded": decode, "decode": None}
    try:
        decoder = open_video(path)
        found["frames"] = frame_count(decoder)
    except BadVideo as e:
        found["open"] = _reason(path, e)
        return found
    if decode:
        count = found["frames"]
        try:
            read_frames(decoder, sorted({0, count // 2, count - 1}), path)
        except BadVideo as e:
            found["decode"] = _reason(path, e)
    return found


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def scan_videos(paths: list[Path], decode: bool, workers: int = 1, cache: ScanCache | None = None,
                advance: Callable[[], None] | None = None) -> tuple[list[tuple[int | None, str | None]], int]:
    """(frames, problem) of every video, in order ("path: reason" as the problem, None when it opens), and
    how many came from the cache. Videos not in the cache are opened by `workers` threads (the decoder
    releases the GIL while it opens and decodes)."""
    stats = [_stat(p) for p in paths]
    results: list[tuple[int | None, str | None] | None] = [
        cache.lookup(p, s, decode) if cache else None for p, s in zip(paths, stats)]
    hits = sum(r is not None for r in results)
    for _ in range(hits if advance else 0):
        advance()
    todo = [i for i, r in enumerate(results) if r is None]
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for i, found in zip(todo, pool.map(lambda i: probe(paths[i], decode), todo)):
            problem = found["open"] or found["decode"]
            results[i] = (found["frames"], f"{paths[i]}: {problem}" if problem else None)
            if cache:
                cache.remember(paths[i], stats[i], found)
            if advance:
                advance()
    if cache and cache.changed:
        cache.forget_removed({cache.key(p) for p in paths})
        cache.save()
    return results, hits
