"""FOCUS (Dobler & de Melo 2023) and MIGRATE (Hong et al., eq. 7).

A new token t gets Σ_j sparsemax(cos(ẽ(t), ẽ(V_O)))_j · E_S(V_O)_j: a sparse convex combination of
the rows of overlapping tokens, weighted by how close t is to them in an auxiliary static space.
MIGRATE is the same computation; its auxiliary fastText space was continued on code-switched text,
which ``langshift static`` / ``langshift codeswitch`` produce — any fastText space is accepted here.
"""

from __future__ import annotations

from .base import (
    InitResult,
    MethodParams,
    TransferProblem,
    fill_fallback,
    has_vector,
    init_method,
    record,
    start_result,
)
from .sparsemax import sparsemax_mix

SLOTS = 8  # heaviest sources kept in the provenance


def sparse_overlap_mix(problem: TransferProblem, params: MethodParams, name: str) -> InitResult:
    # 1. The keys: overlapping tokens that have a static vector (a zero row has no direction).
    if problem.target_static is None:
        raise ValueError(f"{name} needs problem.target_static (static vectors of the target tokens)")
    static = problem.target_static.float()
    keep = has_vector(static, problem.overlap_target)
    key_target, key_source = problem.overlap_target[keep], problem.overlap_source[keep]
    result = start_result(problem, name, slots=SLOTS)
    new = problem.new_ids
    placed = has_vector(static, new) if key_target.numel() else has_vector(None, new)
    # 2. Sparsemax-weighted overlap rows for every new token with a vector ...
    ids = new[placed]
    if ids.numel():
        rows, top_i, top_w = sparsemax_mix(static[ids], static[key_target], problem.source[key_source],
                                           block_size=params.block_size, slots=SLOTS)
        result.matrix[ids] = rows
        record(result, ids, key_source[top_i.clamp_min(0)].masked_fill(top_i < 0, -1), top_w)
    # 3. ... and FVT / mean for the few that have none (e.g. partial UTF-8 bytes without n-grams).
    fill_fallback(problem, result, new[~placed])
    return result


@init_method("focus", needs=("static",))
def focus_init(problem: TransferProblem, params: MethodParams) -> InitResult:
    """Overlap copied; new = sparsemax(cos in a target fastText space) over overlap rows (FOCUS)."""
    return sparse_overlap_mix(problem, params, "focus")


@init_method("migrate", needs=("static",))
def migrate_init(problem: TransferProblem, params: MethodParams) -> InitResult:
    """FOCUS over a fastText space continued on code-switched text (MIGRATE eq. 7)."""
    return sparse_overlap_mix(problem, params, "migrate")
