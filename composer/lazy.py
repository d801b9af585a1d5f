"""A callable named by its module and attribute, imported on its first call.

A kind's or family's declaration names the code that builds its nn.Modules this way
(`build=Lazy("composer.components.heads.cosine_logits_module:build")`), so reading declarations (checking a
spec, listing kinds) never imports torch; only a command that builds imports the module that builds."""

from __future__ import annotations

import importlib
from typing import Any


class Lazy:
    """`module:attribute`, resolved once, on the first call."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.__module__ = where.split(":")[0]  # as a function's: the module that holds the code (tracebacks name it)
        self._target: Any = None

    def resolve(self) -> Any:
        if self._target is None:
            module, attribute = self.where.split(":")
            self._target = getattr(importlib.import_module(module), attribute)
        return self._target

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Lazy({self.where!r})"
