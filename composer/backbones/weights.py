"""Finding pretrained weights: a local file, or a name looked up in the usual Hugging Face hub cache.

When weights cannot be had (no network, nothing cached), the error says exactly what was looked for
and how to point the spec at a local file instead. Nothing here runs in the tests' offline mode except
the error path and local files the tests write themselves.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Callable

from composer.errors import Loc, SpecError

WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")


def is_local_path(weights: str) -> bool:
    """A file on this machine, as opposed to a weight name or hub id such as `openai` or `org/model`."""
    return (weights.startswith(("/", "./", "../", "~")) or weights.endswith(WEIGHT_SUFFIXES)
            or Path(weights).expanduser().is_file())


def local_file(weights: str, what: str, loc: Loc | None) -> Path:
    path = Path(weights).expanduser()
    if not path.is_file():
        raise SpecError(f"weights file for {what} not found: {path}", loc,
                        hint="give an existing file, or a weight name such as 'openai' to use the hub cache")
    return path


def is_torchscript(path: str | Path) -> bool:
    """A TorchScript archive (torch.jit.save), as opposed to a state dict: torch's own test, a constants.pkl."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.count("/") == 1 and name.endswith("/constants.pkl") for name in archive.namelist())


def hub_cache_dir() -> str:
    from huggingface_hub import constants  # lazy: huggingface_hub only for hub weights, not on the check path

    return str(constants.HF_HUB_CACHE)


def weights_file(tag: str, what: str, filename: str, backbone: str, loc: Loc | None) -> str:
    """A local file, or `filename` of the hub repository `tag` (from the cache, or downloaded)."""
    if is_local_path(tag):
        return str(local_file(tag, what, loc))
    from huggingface_hub import hf_hub_download  # lazy: huggingface_hub only for hub weights, not on the check path

    return fetch(f"{what} ({tag})", f"'{tag}' ({filename})", lambda: hf_hub_download(tag, filename), backbone, loc)


def fetch(what: str, looked_for: str, download: Callable[[], str], backbone: str, loc: Loc | None) -> str:
    """Run `download` (a hub lookup that uses the local cache first) or explain how to get the file."""
    try:
        return download()
    except Exception as e:  # hub, network and file errors all end the same way for the user
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        reason = "HF_HUB_OFFLINE=1 and it is not in the cache" if offline else f"{type(e).__name__}: {e}"
        raise SpecError(
            f"cannot get the weights of {what}: looked for {looked_for} in the Hugging Face cache "
            f"({hub_cache_dir()}); {reason}",
            loc,
            hint=(f"download it on a machine with network access (it lands in that cache), or point the spec "
                  f"at a local file: --set backbones.{backbone}.weights=/path/to/file, or use "
                  f"weights: random to build without pretrained weights"),
        ) from None
