"""User-facing errors: each names the parameter, the value and the fix."""

from __future__ import annotations


class LangshiftError(ValueError):
    """An error the user can fix; the CLI prints it without a traceback and exits 2."""


class ConfigError(LangshiftError):
    """A parameter has a bad value."""

    def __init__(self, param: str, value: object, fix: str):
        self.param, self.value, self.fix = param, value, fix
        super().__init__(f"{param}={value!r}: {fix}")


class MissingDependencyError(LangshiftError):
    """An optional backend is not installed; the message carries the install command."""
