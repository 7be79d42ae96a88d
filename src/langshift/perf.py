"""Two helpers the fast paths share: sparse row-weight matrices and pausing the garbage collector."""

from __future__ import annotations

import gc
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def csr(crow: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """A sparse CSR matrix (rows of a few weights each) whose ``@ dense`` is MKL's sparse product.

    The arguments are built by the callers in CSR order, so invariant checks are switched off; torch
    warns once that CSR support is "beta", which says nothing to our users and is silenced."""
    import torch  # here: the CLI imports this module (through vocab) to build its parser

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
        return torch.sparse_csr_tensor(crow, cols, values, size=shape, check_invariants=False)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small objects that form no cycles
    (canonical tokens, provenance records): its passes cost ~40% of that time at a 32k vocabulary."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
