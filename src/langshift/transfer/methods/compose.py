"""COMPOSE: FVT blended with a composition map learned from the source tokenizer's own BPE merges.

A BPE tokenizer builds every token from two smaller ones (merge a + b → t), and the source model
has embeddings for all three. Those ~vocabulary-size triples are training data for a map
f([E(a), E(b)]) ≈ E(t), here a ridge regression with intercept. The target tokenizer builds its
new tokens by merges too, so new rows can be composed bottom-up from the copied overlap rows, in
the target's merge order, with f. The composed row is blended with the FVT row (mean of the
token's source pieces), which errs differently: FVT ignores order and how pieces combine, f
compounds its error along deep merge chains. Zero-shot on held-out text the blend beats both
(BENCHMARKS.md). Our method; it needs no target text and no static space, only the two merge lists.

Tokens the merges do not reach (both tokenizers must be BPE; a part outside the vocabulary) keep
their FVT row, recorded as the ``fvt`` fallback.
"""

from __future__ import annotations

import torch

from .base import (
    InitResult,
    MethodParams,
    TransferProblem,
    init_method,
    piece_means,
    record_pieces,
    start_result,
)

SLOTS = 8
RIDGE = 1.0  # absolute ridge on a Gram matrix summed over ~10⁴-10⁵ merges: only guards rank deficiency


def fit_merge_map(source: torch.Tensor, merges: torch.Tensor, ridge: float = RIDGE) -> torch.Tensor:
    """W ((2d+1) × d) with [E(a), E(b), 1] @ W ≈ E(t) over the source merges (rows a, b, t).

    The Gram products run in the rows' precision, at least float32 (for a model's float32 rows 2.5×
    faster than float64 over ~50k merges; the map's predictions move by ~4e-5 relative), the solve
    in float64."""
    s = source if source.dtype == torch.float64 else source.float()
    x = torch.cat([s[merges[:, 0]], s[merges[:, 1]], torch.ones(len(merges), 1, dtype=s.dtype)], dim=1)
    gram = (x.T @ x).double() + ridge * torch.eye(x.shape[1], dtype=torch.float64)
    return torch.linalg.solve(gram, (x.T @ s[merges[:, 2]]).double())


def merge_levels(merges: torch.Tensor, known: torch.Tensor) -> list[torch.Tensor]:
    """Target merges grouped into levels whose parts are all known before the level runs, so each
    level is one batched product (a merge chain is ~10-20 levels deep, the vocabulary tens of thousands)."""
    known = known.clone()
    pending = merges[~known[merges[:, 2]]]
    levels = []
    while len(pending):
        ready = known[pending[:, 0]] & known[pending[:, 1]]
        if not ready.any():
            break
        level = pending[ready]
        level = level[_first_occurrence(level[:, 2])]  # a token two merges spell is composed once
        levels.append(level)
        known[level[:, 2]] = True
        pending = pending[~known[pending[:, 2]]]
    return levels


def _first_occurrence(ids: torch.Tensor) -> list[int]:
    seen, keep = set(), []
    for i, t in enumerate(ids.tolist()):
        if t not in seen:
            seen.add(t)
            keep.append(i)
    return keep


@init_method("compose", needs=("merges",))
def compose_init(problem: TransferProblem, params: MethodParams) -> InitResult:
    """Overlap copied; new = blend of FVT and a merge-composition map fitted on the source's BPE merges."""
    if problem.pieces is None or problem.source_merges is None or problem.target_merges is None:
        raise ValueError("compose needs problem.pieces, problem.source_merges and problem.target_merges")
    result = start_result(problem, "compose", slots=SLOTS)
    new = problem.new_ids
    # 1. FVT rows for every new token (the blend's other half, and the fallback).
    fvt, has = piece_means(problem.source, problem.pieces, new.tolist())
    fvt[~has] = problem.source.mean(0)
    result.matrix[new] = fvt
    # 2. The composition map, fitted on the source model's own merges.
    weights = fit_merge_map(problem.source, problem.source_merges)
    # 3. Compose the target's new tokens bottom-up in merge levels, from the copied overlap rows.
    composed = result.matrix.double().clone()
    known = torch.zeros(problem.n_target, dtype=torch.bool)
    known[problem.overlap_target] = True
    reached = torch.zeros(problem.n_target, dtype=torch.bool)
    for level in merge_levels(problem.target_merges, known):
        x = torch.cat([composed[level[:, 0]], composed[level[:, 1]],
                       torch.ones(len(level), 1, dtype=composed.dtype)], dim=1)
        composed[level[:, 2]] = x @ weights
        reached[level[:, 2]] = True
    # 4. Blend where composed; FVT (or the mean) elsewhere, recorded as the fallback.
    mix = params.mix
    ids = new[reached[new]]
    result.matrix[ids] = (mix * composed[ids] + (1 - mix) * result.matrix[ids].double()).to(result.matrix.dtype)
    record_pieces(result, problem.pieces, new.tolist())
    result.fallback.update({t: "fvt" if h else "mean"
                            for t, h, r in zip(new.tolist(), has.tolist(), reached[new].tolist(), strict=True) if not r})
    return result
