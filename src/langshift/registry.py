"""Plugins by name: each kind of plugin has one Registry; a miss lists close names.

Plugins register where they are defined (``@INIT_METHODS.register("focus")``); ``langshift ls``
prints every registry. Importing the defining module is what registers a plugin, so each
registry knows the modules that hold its plugins and imports them on first look-up.

Plugins from other packages are found through entry points (as pytest and lm-eval find theirs): the
group is ``langshift.`` + the kind with underscores, plural (``langshift.init_methods``,
``langshift.translators``, ``langshift.taggers``, …). An entry point naming a module
(``myinit = "mypkg.myinit"``) is imported, so its decorators register; one naming an object
(``myinit = "mypkg.myinit:fn"``) registers that object under the entry point's name.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import logging
import types
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from .errors import LangshiftError

T = TypeVar("T")
log = logging.getLogger(__name__)

ALL: dict[str, Registry] = {}


class Registry(Generic[T]):
    def __init__(self, kind: str, modules: Iterable[str] = ()):
        if kind in ALL:
            raise ValueError(f"registry {kind!r} defined twice")
        self.kind = kind
        self._modules = list(modules)
        self._items: dict[str, T] = {}
        self._loaded = False
        self.group = "langshift." + kind.replace(" ", "_") + "s"
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
            self._load_entry_points()

    def _load_entry_points(self) -> None:
        for ep in importlib.metadata.entry_points(group=self.group):
            try:
                obj = ep.load()
            except Exception as exc:  # one broken third-party plugin must not take the others down
                log.warning("%s plugin %r (entry point %s) failed to load: %s: %s", self.kind, ep.name, ep.value,
                            type(exc).__name__, exc)
                continue
            if not isinstance(obj, types.ModuleType) and ep.name not in self._items:
                self.register(ep.name)(obj)

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
