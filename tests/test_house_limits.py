"""Limits that keep the house readable (issue 21): no file of composer/ over 400 lines, no function over 50 lines,
no command-line option declared twice. Each is checked like the layers contract. The allow-lists are empty:
an entry would hold a file or function over its limit with its size then, so that it could only shrink (one
that grows fails, one back under the limit fails until it is taken off).

Budget: well under a second (parses composer/ with ast)."""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "composer"
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 50

# path -> its line count when the limit came in (to shrink: split the file, then lower or drop the entry)
FILES_OVER: dict[str, int] = {}
# "path:function" -> its line count when the limit came in
FUNCTIONS_OVER: dict[str, int] = {}


def sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def file_lines(root: Path = PACKAGE) -> dict[str, int]:
    return {str(p.relative_to(root.parent)): len(p.read_text(encoding="utf-8").splitlines())
            for p in sorted(root.rglob("*.py")) if "__pycache__" not in p.parts}


def function_lines(root: Path = PACKAGE) -> dict[str, int]:
    """Every function and method, decorators and docstring included."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                out[f"{path.relative_to(root.parent)}:{node.name}"] = max(out.get(
                    f"{path.relative_to(root.parent)}:{node.name}", 0), node.end_lineno - start + 1)
    return out


def declared_flags() -> Counter:
    """How many option declarations (click.option(...) or groups' Option((...))) name each flag."""
    counts: Counter = Counter()
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if name == "option" and isinstance(first, ast.Constant):
                texts = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            elif name == "Option" and isinstance(first, ast.Tuple):
                texts = [e.value for e in first.elts if isinstance(e, ast.Constant)]
            else:
                continue
            counts.update({f for text in texts for f in text.split("/") if f.startswith("-")})
    return counts


def _within(sizes: dict[str, int], limit: int, allowed: dict[str, int], what: str) -> None:
    over = {k: v for k, v in sizes.items() if v > limit}
    new = {k: v for k, v in over.items() if k not in allowed}
    assert not new, f"{what} over {limit} lines: {new}"
    grown = {k: (v, allowed[k]) for k, v in over.items() if v > allowed[k]}
    assert not grown, f"{what} that grew past their allowance (now, allowed): {grown}"
    gone = sorted(k for k in allowed if sizes.get(k, 0) <= limit)
    assert not gone, f"{what} now within {limit} lines: take them off the allow-list: {gone}"


def test_no_file_over_the_limit():
    _within(file_lines(), MAX_FILE_LINES, FILES_OVER, "files")


def test_no_function_over_the_limit():
    _within(function_lines(), MAX_FUNCTION_LINES, FUNCTIONS_OVER, "functions")


def test_no_option_declared_twice():
    """One declaration per flag, one meaning: a command that needs it otherwise changes it with Option.but."""
    twice = sorted(flag for flag, n in declared_flags().items() if n > 1)
    assert not twice, f"declared more than once: {twice}"


def test_the_checks_see_what_they_check():
    """The counters find the declarations and functions they count (a parse that sees nothing passes nothing)."""
    flags = declared_flags()
    assert flags["--precision"] == 1 and flags["--batch-size"] == 1 and flags["--workers"] == 1
    assert flags["--seeds"] == 1 and flags["--classes"] == 1
    assert function_lines()["composer/cli.py:get_command"] > 1
    assert file_lines()["composer/cli.py"] <= 150


def test_every_import_inside_a_function_says_why():
    """An import inside a function is a lazy load (a heavy or optional package, the torch-free check path, a
    cycle): each says which in a comment on its line or the line above. composer/commands/ and cli.py are lazy by
    design: `composer --help` and the light commands import neither torch nor the commands they do not run."""
    unmarked = []
    for path in sources():
        rel = path.relative_to(ROOT)
        if rel.parts[1] == "commands" or rel.name == "cli.py":
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        for fn in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(fn):
                    if isinstance(node, (ast.Import, ast.ImportFrom)):
                        here, above = lines[node.lineno - 1], lines[node.lineno - 2].strip()
                        if "#" not in here and not above.startswith("#"):
                            unmarked.append(f"{rel}:{node.lineno}")
    assert not unmarked, f"imports inside functions without a reason: {unmarked}"
