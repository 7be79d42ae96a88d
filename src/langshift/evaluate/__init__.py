"""Evaluation: bits per byte, multiple choice (log-likelihood and generative), MEXA alignment,
language fidelity, pairwise judging, hidden-state views, offline evaluation sets and the HTML report.

One front door, ``run.run_eval(EvalConfig)``, runs any task of the registry in :mod:`.tasks` on a model
(`langshift eval TASK` and a recipe's eval stage both call it) and saves each result as JSON into a run
folder (``--save DIR``); ``report.run_report(ReportConfig)`` (`langshift report`, the report stage) reads
those files (layout in :mod:`langshift.evaluate.results`).
"""

from __future__ import annotations

__all__ = ["bits_per_byte"]


def __getattr__(name: str):
    # lazy: the CLI imports this package to build its parser, and bpb imports torch (seconds)
    if name == "bits_per_byte":
        from .bpb import bits_per_byte

        return bits_per_byte
    raise AttributeError(name)
