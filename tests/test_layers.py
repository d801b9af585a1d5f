"""The layering is a contract: pyproject.toml's [tool.importlinter] says which package may import which,
and import-linter (pinned in requirements.txt) checks every import, including those inside functions.

The second test plants one upward import in a copy of the package and expects the check to catch it,
so a misconfigured contract (a wrong root, a layer list that no longer matches) cannot pass silently.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    """Run import-linter on the `composer` package found in `cwd`, with `cwd`'s pyproject.toml."""
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))"
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_no_import_runs_back_up_the_layers():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path: Path):
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(ROOT / "composer", tmp_path / "composer", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "grammar", "specs"))
    site = tmp_path / "composer" / "backbones" / "tower.py"
    site.write_text(site.read_text() + "\n\ndef _late():\n    from composer.graph import plan  # noqa: F401\n")
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "composer.backbones is not allowed to import composer.graph" in result.stdout
    assert "composer.backbones.tower -> composer.graph.plan" in result.stdout
