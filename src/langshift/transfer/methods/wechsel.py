"""WECHSEL (Minixhofer et al. 2022): cross-lingual neighbours through aligned static spaces.

1. Align the target-language static space to the source-language one with orthogonal Procrustes
   on the vectors of bilingual dictionary pairs.
2. Each new target token's static vector, mapped into the source space, finds its k nearest source
   tokens by cosine (source tokens' vectors in the source space; every source token is a candidate,
   not only the overlap).
3. Its row is the softmax(similarity / temperature)-weighted mean of those source rows
   (paper defaults: k = 10, temperature = 0.1).
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from .base import (
    InitResult,
    MethodParams,
    TransferProblem,
    blocks,
    fill_fallback,
    has_vector,
    init_method,
    record,
    start_result,
    unit_rows,
)

DEFAULT_K = 10


def procrustes(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The orthogonal W minimising ||a W − b||_F (Schönemann 1966): W = U Vᵀ for U S Vᵀ = svd(aᵀ b)."""
    if a.shape != b.shape:
        raise ValueError(f"procrustes needs equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
    u, _, vh = torch.linalg.svd(a.double().T @ b.double())
    return (u @ vh).to(a.dtype)


@init_method("wechsel", needs=("static", "source_static", "dictionary"))
def wechsel_init(problem: TransferProblem, params: MethodParams) -> InitResult:
    """Overlap copied; new = softmax(cos/T) over the k nearest source tokens in Procrustes-aligned fastText spaces."""
    for name in ("target_static", "source_static", "dict_source", "dict_target"):
        if getattr(problem, name) is None:
            raise ValueError(f"wechsel needs problem.{name}")
    k = params.k or DEFAULT_K
    # 1. Target space → source space, fitted on unit-length dictionary vectors.
    w_map = procrustes(unit_rows(problem.dict_target.float()), unit_rows(problem.dict_source.float()))
    # 2. Candidates: source tokens with a vector in the source space.
    all_source = torch.arange(problem.source.shape[0])
    cand = all_source[has_vector(problem.source_static, all_source)]
    cand_vecs = unit_rows(problem.source_static[cand].float())
    k = min(k, cand.numel())
    result = start_result(problem, "wechsel", slots=k)
    new = problem.new_ids
    placed = has_vector(problem.target_static, new) & (k > 0)
    ids = new[placed]
    # 3. Blocks of new tokens: top-k cosine, softmax with temperature, weighted mean of source rows.
    for sl in tqdm(list(blocks(ids.numel(), params.block_size)), desc="wechsel", unit="block",
                   disable=ids.numel() == 0):
        block = ids[sl]
        q = unit_rows(problem.target_static[block].float() @ w_map)
        sim, idx = (q @ cand_vecs.T).topk(k, dim=1)
        weights = torch.softmax(sim / params.temperature, dim=1)
        src = cand[idx]
        result.matrix[block] = torch.einsum("bk,bkd->bd", weights, problem.source[src].float()).to(result.matrix.dtype)
        record(result, block, src, weights)
    fill_fallback(problem, result, new[~placed])
    return result
