"""Evaluation: bits per byte, multiple choice (log-likelihood and generative), MEXA alignment,
language fidelity, pairwise judging, hidden-state views, offline evaluation sets and the HTML report.

Every command can save its result as JSON into a run folder (``--save DIR``); ``langshift report``
reads those files (layout in :mod:`langshift.evaluate.results`).
"""

from __future__ import annotations

from .bpb import bits_per_byte

__all__ = ["bits_per_byte"]
