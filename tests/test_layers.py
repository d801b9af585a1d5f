"""The layering is a contract: pyproject.toml's [tool.importlinter] says which package may import which,
and import-linter (pinned in requirements.txt) checks every import, including those inside functions.

The second test plants one upward import in a copy of the package and expects the check to catch it,
so a misconfigured contract (a wrong root, a layer list that no longer matches) cannot pass silently.
"""

from __future__ import annotations

import ast
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


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_lines(tree: ast.Module) -> set[int]:
    """The lines of `if TYPE_CHECKING:` blocks: annotations only, never imported when the module runs."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            lines.update(range(node.lineno, node.end_lineno + 1))
    return lines


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports, anywhere in its text (inside functions too, not under
    TYPE_CHECKING): `from a.b import c` counts as importing a.b.c when that is a module, else a.b."""
    paths = {_module_name(p, root): p for p in root.rglob("*.py") if "__pycache__" not in p.parts}

    def known(name: str) -> str | None:
        while name and name not in paths:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_lines(tree)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(tree):
            if getattr(node, "lineno", 0) in skip:
                continue
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the package, one level up per dot after the first
                    up = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                targets.update([base, *(f"{base}.{a.name}" for a in node.names)])
        graph[name] = {t for t in map(known, targets) if t and t != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of a graph: its strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circles():
    """Modules import each other one way only (an import inside a function included): a circle held together by
    a late import breaks when someone moves that import to the top, and it hides which module is below which."""
    assert circles(import_graph(ROOT / "composer")) == []


def test_a_planted_circle_is_found(tmp_path: Path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub.b import f\n")
    (package / "sub" / "b.py").write_text("def f():\n    from .. import a\n")
    (package / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n")
    assert circles(import_graph(package)) == [["pkg.a", "pkg.sub.b"]]


def test_imports_are_in_ruffs_order(tmp_path: Path):
    """Ruff's import sorting (pyproject.toml [tool.ruff]: the rule I only) holds over the package, the tests,
    the benchmarks and the examples; a block planted out of order in a copy is caught (the check can fail)."""
    ruff = [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise"]
    result = subprocess.run([*ruff, "composer", "tests", "benchmarks", "examples"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "planted.py").write_text("import sys\nimport os\n\nprint(os, sys)\n")
    result = subprocess.run([*ruff, "planted.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "I001" in result.stdout, result.stdout + result.stderr
