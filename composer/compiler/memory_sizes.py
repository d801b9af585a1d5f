"""Memory sizes: as people write them (--memory-budget 24GiB), as composer prints them, and what the device
running a command has free (the default budget a run's recomputation plan and `composer build` price against)."""

from __future__ import annotations

import os
import re

import torch

from composer.spec.limits import MAX_BATCH_BYTES

MARGIN = 0.9  # of the free GPU memory taken as the default budget: the CUDA context and fragmentation need the rest

_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 10**3, "kib": 2**10, "m": 2**20, "mb": 10**6, "mib": 2**20,
          "g": 2**30, "gb": 10**9, "gib": 2**30, "t": 2**40, "tb": 10**12, "tib": 2**40}


def parse_bytes(text: str) -> int:
    """'24GiB', '24GB', '24G', '500MiB', '1.5 TiB' or a plain byte count. KiB/MiB/GiB/TiB and the bare
    K/M/G/T are powers of 1024 (how GPU memory is quoted); kB/MB/GB/TB are powers of 1000."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(f"cannot read the memory size '{text}': write a number with one of the units B, KiB, "
                         "MiB, GiB, TiB (powers of 1024; K, M, G, T mean the same), kB, MB, GB, TB (powers of "
                         "1000), e.g. 24GiB or 500MiB")
    size = float(match.group(1)) * _UNITS[unit]
    if size > MAX_BATCH_BYTES:  # also what keeps the batch sizes priced against it within torch's shapes
        raise ValueError(f"the memory size '{text}' is more than any machine holds (at most 1 PiB)")
    return int(size)


def format_bytes(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= size:
            return f"{n / size:,.2f} {unit}"
    return f"{n} B"


def default_budget() -> tuple[int, str] | None:
    """What a run started now could use: the free memory of the GPU (with a margin), else the available
    RAM of this machine (a CPU run), else None."""
    if torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info()
        return int(free * MARGIN), f"{MARGIN:.0%} of the free memory of {torch.cuda.get_device_name()}"
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "the available RAM (no GPU here)"
    except (ValueError, OSError):
        return None
