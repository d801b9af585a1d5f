"""Command start-up time: wall seconds of `composer validate|fmt|kinds|specs|diff|graph|build` in fresh processes (median
of N).

Most of a short command's time is imports (torch, transformers, open_clip); `python -X importtime -m
composer.cli CMD` shows which. Usage: python benchmarks/startup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "validate": ["validate", "clip-adapter"],
    "fmt": ["fmt", "clip-adapter", "--to", "text"],
    "kinds": ["kinds"],
    "specs": ["specs"],
    "diff": ["diff", "msta", "msta-few-shot"],
    "graph": ["graph", "msta", "--format", "json"],
    "build (full size, meta)": ["build", "msta", "--no-flops"],
}
# issue 22: the commands that only read specs import no torch (declarations only)
GOALS = {"validate": 0.5, "fmt": 0.5, "kinds": 0.5, "specs": 0.5, "diff": 0.5, "graph": 0.5, "build (full size, meta)": 3.0}


def seconds(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "composer.cli", *args], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    print("| command | median s | min s | goal s |\n|---|---|---|---|")
    for name, args in COMMANDS.items():
        times = [seconds(args) for _ in range(repeat)]
        print(f"| `composer {' '.join(args)}` | {statistics.median(times):.2f} | {min(times):.2f} | {GOALS[name]} |")


if __name__ == "__main__":
    main()
