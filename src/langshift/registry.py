"""Plugins by name: each kind of plugin has one Registry; a miss lists close names.

Plugins register where they are defined (``@INIT_METHODS.register("focus")``); ``langshift ls``
prints every registry. Importing the defining module is what registers a plugin, so each
registry knows the modules that hold its plugins and imports them on first look-up.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from .errors import LangshiftError

T = TypeVar("T")

ALL: dict[str, Registry] = {}


class Registry(Generic[T]):
    def __init__(self, kind: str, modules: Iterable[str] = ()):
        if kind in ALL:
            raise ValueError(f"registry {kind!r} defined twice")
        self.kind = kind
        self._modules = list(modules)
        self._items: dict[str, T] = {}
        self._loaded = False
        ALL[kind] = self

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._items[name] = obj
            return obj

        return add

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            for mod in self._modules:
                importlib.import_module(mod)

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def get(self, name: str, param: str | None = None) -> T:
        self._load()
        if name in self._items:
            return self._items[name]
        close = difflib.get_close_matches(name, self._items, n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise LangshiftError(
            f"{param or self.kind}={name!r}: no such {self.kind}.{hint} Known: {', '.join(self.names())}."
        )

    def items(self) -> list[tuple[str, T]]:
        self._load()
        return sorted(self._items.items())
