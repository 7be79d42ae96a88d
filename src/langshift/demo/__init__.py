"""``langshift demo``: the README's first command, built on the pipeline and the shipped demo recipe."""

from __future__ import annotations

from .run import run_demo

__all__ = ["run_demo"]
