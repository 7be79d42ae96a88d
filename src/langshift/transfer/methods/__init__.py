"""Embedding init methods by name: ``INIT_METHODS.get("focus")(problem, params) -> InitResult``."""

from __future__ import annotations

from .base import INIT_METHODS, InitResult, MethodParams, TransferProblem, init_method

__all__ = ["INIT_METHODS", "InitResult", "MethodParams", "TransferProblem", "init_method"]
