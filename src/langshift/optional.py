"""Optional heavy backends: import them through ``require`` so a missing one names its install."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingDependencyError


def require(module: str, install: str, purpose: str = "") -> ModuleType:
    """Import ``module`` or fail with the command that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        why = f" (needed for {purpose})" if purpose else ""
        raise MissingDependencyError(
            f"the Python module {module!r} is not installed{why}. Install it with: {install}"
        ) from exc
