"""Options declared once: each `Option` is one click declaration and the record field it fills, and a `Group`
is the options several commands share (composer/commands/groups.py declares them all).

A command decorates itself with its groups and builds its typed record with `fill`: no hand mapping of
keyword arguments, so adding an option touches one place. `typed` answers which record fields the user
typed (a resume checks them against the run's record; a sweep passes them on to each run)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import click

Params = Mapping[str, Any]  # click's parameters of one invocation, by name


@dataclass(frozen=True)
class Option:
    """One option: `flags` and `kwargs` as click.option takes them; `field` is the record field it fills
    ("" for none: a flag another option reads); `value` computes that field from the parameters `reads`
    (default: the parameter's own value)."""

    flags: tuple[str, ...]
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    to: str | None = None
    value: Callable[[Params], Any] | None = None
    reads: tuple[str, ...] = ()

    @property
    def param(self) -> str:
        """click's name of the parameter: the one declaration without dashes, else the longest flag."""
        plain = [f for f in self.flags if not f.startswith("-")]
        return plain[0] if plain else max(self.flags, key=len).lstrip("-").replace("-", "_")

    @property
    def field(self) -> str:
        return self.param if self.to is None else self.to

    @property
    def sources(self) -> tuple[str, ...]:
        return self.reads or (self.param,)

    def but(self, **changes: Any) -> Option:
        """The same option (flags, kind of type) with other click settings: a command's own help, default, or
        bounds (a path that must exist, other choices); `to`, `value` and `reads` change what it fills."""
        if "type" in changes and type(changes["type"]) is not type(self.kwargs.get("type")):
            raise ValueError(f"{self.flags[0]}: an option keeps the kind of type it is declared with")
        own = {k: changes.pop(k) for k in ("to", "value", "reads") if k in changes}
        return dataclasses.replace(self, kwargs={**self.kwargs, **changes}, **own)

    def read(self, params: Params) -> Any:
        return self.value(params) if self.value is not None else params[self.param]

    def __call__(self, fn):
        return click.option(*self.flags, **self.kwargs)(fn)


@dataclass(frozen=True)
class Group:
    """Options that go together (data, backbone and size, compute and precision, ...), in help order."""

    name: str
    options: tuple[Option, ...]

    def __call__(self, fn):
        for option in reversed(self.options):
            fn = option(fn)
        return fn

    def but(self, flag: str, **changes: Any) -> Group:
        """The group with one option changed (Option.but)."""
        self.find(flag)
        return Group(self.name, tuple(o.but(**changes) if flag in o.flags else o for o in self.options))

    def without(self, *flags: str) -> Group:
        for flag in flags:
            self.find(flag)
        return Group(self.name, tuple(o for o in self.options if not set(flags) & set(o.flags)))

    def find(self, flag: str) -> Option:
        """The group's option with this flag."""
        found = [o for o in self.options if flag in o.flags]
        if not found:
            raise ValueError(f"the {self.name} options have no {flag}")
        return found[0]


def together(*groups: Group | Option):
    """One decorator for several groups, in help order."""
    def decorate(fn):
        for group in reversed(groups):
            fn = group(fn)
        return fn

    return decorate


def options(*groups: Group | Option) -> list[Option]:
    return [o for g in groups for o in (g.options if isinstance(g, Group) else (g,))]


def fill(record: type, params: Params, *groups: Group | Option, **extra: Any):
    """The record (a dataclass) with every field one of the groups' options fills, from click's parameters,
    plus `extra`. A field no option fills keeps the record's default."""
    names = {f.name for f in dataclasses.fields(record)}
    values = {o.field: o.read(params) for o in options(*groups) if o.field and o.field in names}
    return record(**{**values, **extra})


def typed(ctx: click.Context, *groups: Group | Option) -> list[str]:
    """The record fields of the groups whose options the user typed (not click's defaults)."""
    given = lambda p: ctx.get_parameter_source(p) not in (None, click.core.ParameterSource.DEFAULT)  # noqa: E731
    return [o.field for o in options(*groups) if o.field and any(given(p) for p in o.sources)]
