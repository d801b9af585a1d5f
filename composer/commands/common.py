"""What every command shares: the exit-2 error handling, the console, the bounded option types, spec loading.

Every mistake in a spec (or in a command's arguments about it) ends with a located message and exit status 2,
never a traceback."""

from __future__ import annotations

import functools
import math
import os
import sys
from pathlib import Path

import click
from rich.console import Console

from composer.errors import DataError, SpecError
from composer.spec.limits import MAX_INT, MAX_WORKERS

WIDE = 1000  # columns outside a terminal: tables take the width they need


def fail_on_spec_errors(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SpecError as e:
            click.echo(str(e), err=True)
            sys.exit(2)
        except DataError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
        except OSError as e:  # a folder that does not exist or cannot be written, a full disk: the user's to fix
            where = f" {e.filename}" if e.filename else ""
            click.echo(f"error: cannot read or write{where}: {e.strerror or e}", err=True)
            sys.exit(2)

    return wrapper


def console(stderr: bool = False) -> Console:
    """A rich console that fits the terminal, or, when the output is a file or a pipe, never cuts or wraps
    a table at 80 columns (rich's default outside a terminal)."""
    stream = sys.stderr if stderr else sys.stdout
    wide = not (hasattr(stream, "isatty") and stream.isatty())
    return Console(stderr=stderr, width=WIDE if wide else None, soft_wrap=wide)


class Finite(click.FloatRange):
    """A FloatRange that also refuses nan and inf (click's lets nan through: every comparison with it is false)."""

    name = "finite float"

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


class NonEmptyPath(click.Path):
    """A click.Path that refuses an empty value ("" would silently mean the current folder: an export or a
    prepared copy written into it, a run directory's "."; for -o, standard output) and one no file system
    takes (a name over 255 bytes, a path over 4096: the OS raises where each first touches it)."""

    def convert(self, value, param, ctx):
        if isinstance(value, str) and not value.strip():
            self.fail("an empty path; leave the option out for its default", param, ctx)
        raw = os.fsencode(value) if isinstance(value, str) else bytes(value)
        if len(raw) > 4096 or any(len(part) > 255 for part in raw.split(b"/")):
            self.fail("a path longer than a file system takes (names up to 255 bytes, 4096 in all)", param, ctx)
        return super().convert(value, param, ctx)


def written(output: str | Path, write) -> None:
    """Call `write` (which writes `output`); a path that cannot be written is a one-line error, exit 2."""
    try:
        write()
    except OSError as e:
        raise DataError(f"cannot write {output}: {e.strerror or e}") from None


# the bounds of the options that count or seed something (docs/language.md, "Limits"); refused by click: exit 2
COUNT = click.IntRange(1, MAX_INT)  # epochs, steps, batch sizes: at least one, within 64 bits
SEED = click.IntRange(-MAX_INT, MAX_INT)  # a seed within 64 bits, as in a spec
WORKERS = click.IntRange(0, MAX_WORKERS)  # worker processes (0: load in the main process)


def load(spec_path: str, sets, unsets):
    from composer.spec.load import load_spec  # pydantic and lark: only for the commands that read a spec

    return load_spec(spec_path, sets, unsets)


def compile_meta(spec, tiny: bool = False, plan: bool = True, classes: int | None = None, recompute=True,
                 weights: str | None = None):
    """The spec compiled on the meta device (no weights loaded)."""
    from composer.compiler.compile import BuildOptions, compile_spec  # torch: only for the commands that build

    return compile_spec(spec, BuildOptions(device="meta", tiny=tiny, plan=plan, recompute=recompute,
                                           num_classes=classes, weights=weights))
