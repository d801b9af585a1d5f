"""Tensor types for symbolic shape inference: shapes of named dimensions (B, T, C, ...) or sizes.

A dimension is an int (a known size) or a name. `B` (clips in a batch) and `C` (classes) stay
symbolic; frame counts and widths are numbers taken from the spec. A component declares its ports as
patterns; `match` binds the pattern's names against an actual type and fails with a sentence a user
can act on ("expected [B, T, D], got [B, D]: the input has no time axis").
"""

from __future__ import annotations

from dataclasses import dataclass, field

Dim = int | str


class ShapeError(Exception):
    """A type mismatch, raised by inference and reported by the graph checks at the spec location."""


@dataclass(frozen=True)
class TType:
    shape: tuple[Dim, ...]
    dtype: str = "float"  # "float", "long" (labels) or "str" (texts)
    # tokens before the patch tokens on the token axis, as the tower that made the tensor declares them
    # (class token, registers): taps carry it so a reader splits tokens by declaration, not by assumption
    prefix: int | None = field(default=None, compare=False)

    def __str__(self) -> str:
        inner = ", ".join(str(d) for d in self.shape)
        return f"{self.dtype}[{inner}]" if self.dtype != "float" else f"[{inner}]"


SCALAR = TType(())


def match(actual: TType, pattern: tuple[Dim, ...], bindings: dict[str, Dim] | None = None,
          dtype: str = "float", what: str = "input") -> dict[str, Dim]:
    """Bind `pattern` (names, sizes, and "..." for any leading dims) against `actual`.

    Names already in `bindings` must agree; returns the extended bindings."""
    bindings = dict(bindings or {})
    if actual.dtype != dtype:
        raise ShapeError(f"{what} must be {dtype} data, got {actual}")
    shape = actual.shape
    if pattern and pattern[0] == "...":
        pattern = pattern[1:]
        if len(shape) < len(pattern):
            raise ShapeError(f"{what} needs at least {len(pattern)} dims {_fmt(pattern)}, got {actual}")
        shape = shape[len(shape) - len(pattern):]
    if len(shape) != len(pattern):
        raise ShapeError(f"{what} must be {_fmt(pattern)}, got {actual}")
    for want, got in zip(pattern, shape):
        if isinstance(want, int):
            if isinstance(got, int) and got != want:
                raise ShapeError(f"{what} must be {_fmt(pattern)} with {want} there, got {actual}")
            continue
        if want in bindings and bindings[want] != got:
            raise ShapeError(f"{what}: dimension {want} is {bindings[want]} elsewhere but {got} here ({actual})")
        bindings[want] = got
    return bindings


def _fmt(pattern: tuple[Dim, ...]) -> str:
    return "[" + ", ".join(str(d) for d in pattern) + "]"
