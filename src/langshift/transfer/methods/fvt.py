"""FVT (Fast Vocabulary Transfer, Gee et al. 2022): a new token's row is the mean of the rows of
the pieces the SOURCE tokenizer splits it into (``problem.pieces``, built by ``transfer.pieces``)."""

from __future__ import annotations

from .base import (
    InitResult,
    MethodParams,
    TransferProblem,
    init_method,
    piece_means,
    record_pieces,
    start_result,
)

SLOTS = 8  # pieces kept in the provenance


@init_method("fvt")
def fvt_init(problem: TransferProblem, params: MethodParams) -> InitResult:
    """Overlap copied; a new token = mean of the source rows of its source-tokenizer pieces."""
    if problem.pieces is None:
        raise ValueError("fvt needs problem.pieces (source pieces per target token)")
    result = start_result(problem, "fvt", slots=SLOTS)
    new = problem.new_ids.tolist()
    rows, has = piece_means(problem.source, problem.pieces, new)
    rows[~has] = problem.source.mean(0)
    result.matrix[new] = rows
    record_pieces(result, problem.pieces, new)
    result.fallback.update({t: "mean" for t, h in zip(new, has.tolist(), strict=True) if not h})
    return result
