"""Helpers the fast paths share: sparse row-weight matrices, pausing the garbage collector, and the peak
memory of one stretch of work (each pipeline stage records its own)."""

from __future__ import annotations

import gc
import sys
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


# Peak memory of one stretch of work ---------------------------------------------------------------------
# Linux keeps a resettable high-water mark of resident memory (VmHWM, reset by writing 5 to clear_refs), so
# each stage can report its own peak in a process that ran others before it. Elsewhere only the process's
# lifetime peak exists (getrusage), which is then reported as is.
_STATUS, _CLEAR_REFS = "/proc/self/status", "/proc/self/clear_refs"


def _rss_high_water_kib() -> int | None:
    try:
        with open(_STATUS, encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _lifetime_peak_kib(children: bool = False) -> int:
    try:
        import resource  # POSIX only
    except ImportError:
        return 0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KiB on Linux


def _cuda():
    torch = sys.modules.get("torch")  # only when the work itself imported torch: measuring must not load it
    return torch.cuda if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized() else None


def reset_peak_memory() -> dict[str, int]:
    """Start a measurement: reset what can be reset; returns the marks that ``peak_memory`` compares with."""
    try:
        with open(_CLEAR_REFS, "w", encoding="ascii") as fh:
            fh.write("5")
        resettable = True
    except OSError:
        resettable = False
    cuda = _cuda()
    if cuda is not None:
        cuda.reset_peak_memory_stats()
    return {"resettable": int(resettable), "children_kib": _lifetime_peak_kib(children=True)}


def peak_memory(marks: dict[str, int]) -> dict[str, float | str]:
    """Peak memory since ``reset_peak_memory``: ``rss_mib`` (this process, or the largest child process it
    waited for during the stretch, e.g. ``accelerate launch``; ``rss_scope`` says whether it is the stretch's
    own peak or the process's lifetime one) and ``cuda_mib`` (torch's allocator, this process's device)."""
    hwm = _rss_high_water_kib() if marks["resettable"] else None
    own = hwm if hwm is not None else _lifetime_peak_kib()
    out: dict[str, float | str] = {"rss_mib": round(own / 1024, 1),
                                   "rss_scope": "stage" if hwm is not None else "process lifetime"}
    children = _lifetime_peak_kib(children=True)
    if children > marks["children_kib"] and children > own:  # a child that rose above every earlier one
        out["rss_mib"] = round(children / 1024, 1)
        out["rss_scope"] = "stage (child process)"
    cuda = _cuda()
    if cuda is not None:
        out["cuda_mib"] = round(cuda.max_memory_allocated() / 2**20, 1)
    return out
