"""Checking an editor's buffer as `composer validate` checks a file: the same reader, IR and checks (against
the declarations of kinds and families, without torch; built on the meta device only where validate builds),
so the problems are the compiler's own, with their locations. Problems located in another file (a base the spec extends) are shown at the
`extends` line of this one."""

from __future__ import annotations

from pathlib import Path

from composer.errors import Loc, Problem, SpecError


def check(path: Path, text: str) -> list[Problem]:
    """The problems of the spec `path` whose text is `text` (unsaved edits included); [] when it compiles.
    A crash of the compiler is reported as one problem, never raised: the language server must survive it."""
    # lazy: the checker (IR, registries) loads at the first check, not when the server starts
    from composer.graph.declared import check_spec, needs_build
    from composer.spec.load import load_spec  # lazy: as above

    try:
        spec = load_spec(path, text=text)
        if needs_build(check_spec(spec)):  # params only a built tower can check (CoOp's init words)
            # lazy: builds a model (torch) only for params a built tower checks
            from composer.compiler.compile import BuildOptions, compile_spec

            compile_spec(spec, BuildOptions(device="meta"))
    except SpecError as e:
        return [_here(p, str(path), text) for p in e.problems]
    except RecursionError:
        return [Problem("the spec nests too deeply to check", Loc(str(path), 1, 1))]
    except Exception as e:  # noqa: BLE001  (a bug in composer: shown, not fatal to the server)
        return [Problem(f"composer could not check this spec ({type(e).__name__}: {e})", Loc(str(path), 1, 1),
                        hint="this is a bug in composer; `composer validate` shows the traceback")]
    return []


def _here(problem: Problem, file: str, text: str) -> Problem:
    """The problem located in this file: one from elsewhere (a base, a missing loc) moves to `extends` or 1:1."""
    if problem.loc is not None and problem.loc.file == file:
        return problem
    where = f" (in {problem.loc})" if problem.loc is not None else ""
    line = next((i for i, t in enumerate(text.splitlines(), 1) if t.lstrip().startswith("extends")), 1)
    return Problem(problem.message + where, Loc(file, line, 1, 7 if line > 1 or text.startswith("extends") else 1),
                   problem.expected, problem.hint)
