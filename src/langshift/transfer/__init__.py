"""Embedding transfer: give an LLM a new tokenizer, initialising the new rows by a named method.

``config`` holds the options (``MethodParams`` ⊂ ``TransferOptions`` ⊂ ``TransferConfig``);
``methods`` the pure init methods (``INIT_METHODS``); ``apply.transfer`` runs one on a model and a
target tokenizer (input and untied output matrices, padding rows, special-token ids, chat template);
``run.run_transfer`` is the stage's front door (files in, model folder out, one method or the best
of several candidates).
"""

from __future__ import annotations

__all__ = ["INIT_METHODS", "InitResult", "MethodParams", "TransferProblem"]


def __getattr__(name: str):
    # lazy: the CLI and the pipeline import transfer.config to build their parsers; methods import torch
    if name in __all__:
        from . import methods

        return getattr(methods, name)
    raise AttributeError(name)
