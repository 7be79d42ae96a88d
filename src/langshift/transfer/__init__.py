"""Embedding transfer: give an LLM a new tokenizer, initialising the new rows by a named method.

``methods`` holds the pure init methods (``INIT_METHODS``); ``apply.transfer`` runs one on a model and
a target tokenizer (input and untied output matrices, padding rows, special-token ids, chat template).
"""

from __future__ import annotations

from .methods import INIT_METHODS, InitResult, MethodParams, TransferProblem

__all__ = ["INIT_METHODS", "InitResult", "MethodParams", "TransferProblem"]
