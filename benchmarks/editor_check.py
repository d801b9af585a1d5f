"""How long the language server's check of a buffer takes once warm (issue 22: under 100 ms for a shipped spec).

`composer lsp` checks a document with composer/editor/check.py's `check(path, text)` on every change (debounced).
This times that call in one process, after one warm-up check of every shipped spec (imports and declarations
loaded), for each shipped spec: the median of 5 checks of its unchanged text. Usage:
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/editor_check.py
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from composer.editor.check import check
from composer.spec.shipped import shipped

GOAL_MS = 100


def main() -> None:
    specs = {name: Path(path) for name, path in shipped().items()}
    texts = {name: path.read_text(encoding="utf-8") for name, path in specs.items()}
    for name, path in specs.items():  # warm-up
        assert check(path, texts[name]) == [], name
    times = {}
    for name, path in specs.items():
        runs = []
        for _ in range(5):
            start = time.perf_counter()
            check(path, texts[name])
            runs.append((time.perf_counter() - start) * 1000)
        times[name] = statistics.median(runs)
    slowest = sorted(times.items(), key=lambda kv: -kv[1])
    print(f"{len(times)} shipped specs, warm check median of 5: median {statistics.median(times.values()):.1f} ms, "
          f"slowest {slowest[0][0]} {slowest[0][1]:.1f} ms; over {GOAL_MS} ms: "
          f"{[n for n, t in slowest if t > GOAL_MS] or 'none'}")
    for name, ms in slowest[:5]:
        print(f"  {name}: {ms:.1f} ms")


if __name__ == "__main__":
    main()
