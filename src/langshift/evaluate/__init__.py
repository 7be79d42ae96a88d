"""Evaluation: bits per byte, multiple choice (log-likelihood and generative), MEXA alignment,
language fidelity, pairwise judging, hidden-state views, offline evaluation sets and the HTML report.

Every command can save its result as JSON into a run folder (``--save DIR``); ``langshift report``
reads those files (layout in :mod:`langshift.evaluate.results`).
"""

from __future__ import annotations

__all__ = ["bits_per_byte"]


def __getattr__(name: str):
    # lazy: the CLI imports this package to build its parser, and bpb imports torch (seconds)
    if name == "bits_per_byte":
        from .bpb import bits_per_byte

        return bits_per_byte
    raise AttributeError(name)
