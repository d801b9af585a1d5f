"""The installed composer's version, as every record it writes names it (run.json, checkpoint manifests,
safetensors metadata, export records)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def composer_version() -> str:
    try:
        return version("composer-video")
    except PackageNotFoundError:  # a source tree that was never installed
        return "unknown"
