"""SALT (Lee et al. 2025), our reading (docs/papers.md): a local linear map per new token.

For a new token t with auxiliary vector x (a target-language model's input row, or a static
vector): take its k most cosine-similar OVERLAPPING tokens in the auxiliary space, fit a linear
regression with intercept from their auxiliary vectors X (k × a) to their LLM rows Y (k × d), and
apply it to x. Centring by the neighbours' means absorbs the (unpenalised) intercept; the map is
fitted in its dual (kernel) form, which is the ridge solution for any k and a:

    ŷ = ȳ + (x − x̄) Xcᵀ (Xc Xcᵀ + λI)⁻¹ Yc  =  Σ_i w_i y_i,   w = 1/k + α − mean(α),
    α = (Xc Xcᵀ + λI)⁻¹ Xc (x − x̄).

So only a k × k system per token is solved (batched with torch.linalg), and the result is an exact
linear combination of the neighbours' rows (the weights go to the provenance). λ = ridge ×
mean diag(Xc Xcᵀ), so ``ridge`` does not depend on the auxiliary vectors' scale; ridge = 0 gives the
minimum-norm least-squares map (pseudo-inverse), also when k < a + 1.
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from ...perf import csr
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

DEFAULT_K = 32


def local_regression_weights(x: torch.Tensor, neighbours: torch.Tensor, ridge: float) -> torch.Tensor:
    """Weights w (B, k) with Σ_i w_i y_i = the ridge regression (with intercept) fitted on
    ``neighbours`` (B, k, a) → y_i and evaluated at ``x`` (B, a).

    With a ridge the k × k systems are well conditioned (λ ≥ ridge × mean diagonal), so the Gram
    products run in float32 (4× faster than float64: most of SALT's time) and only the solve in
    float64; without one (the pseudo-inverse) everything is float64."""
    dtype = torch.float32 if ridge > 0 else torch.float64
    xn, nb = x.to(dtype), neighbours.to(dtype)
    k = nb.shape[1]
    mean = nb.mean(1, keepdim=True)
    xc = nb - mean                                              # (B, k, a)
    gram = (xc @ xc.transpose(1, 2)).double()                   # (B, k, k)
    rhs = (xc @ (xn.unsqueeze(1) - mean).transpose(1, 2)).double()  # (B, k, 1)
    if ridge > 0:
        lam = ridge * gram.diagonal(dim1=1, dim2=2).mean(1).clamp_min(1e-12)
        alpha = torch.linalg.solve(gram + lam[:, None, None] * torch.eye(k, dtype=gram.dtype), rhs)
    else:
        alpha = torch.linalg.pinv(gram, hermitian=True) @ rhs
    alpha = alpha.squeeze(2)
    return (1.0 / k + alpha - alpha.mean(1, keepdim=True)).float()


@init_method("salt", needs=("aux",))
def salt_init(problem: TransferProblem, params: MethodParams) -> InitResult:
    """Overlap copied; new = local ridge regression from an auxiliary space, fitted on the k nearest overlap tokens."""
    if problem.aux is None:
        raise ValueError("salt needs problem.aux (auxiliary vectors of the target tokens)")
    aux = problem.aux.float()
    # 1. Anchors: overlapping tokens with an auxiliary vector.
    keep = has_vector(aux, problem.overlap_target)
    anchor_t, anchor_s = problem.overlap_target[keep], problem.overlap_source[keep]
    k = min(params.k or DEFAULT_K, anchor_t.numel())
    result = start_result(problem, "salt", slots=min(k, 8))
    new = problem.new_ids
    placed = has_vector(aux, new) & (k > 0)
    ids = new[placed]
    anchor_vecs, anchor_unit = aux[anchor_t], unit_rows(aux[anchor_t])
    source = problem.source.float()
    # 2. Per block: nearest anchors, their regression weights, the weighted sum of their LLM rows.
    for sl in tqdm(list(blocks(ids.numel(), params.block_size)), desc="salt", unit="block",
                   disable=ids.numel() == 0):
        block = ids[sl]
        _, idx = (unit_rows(aux[block]) @ anchor_unit.T).topk(k, dim=1)
        weights = local_regression_weights(aux[block], anchor_vecs[idx], params.ridge)
        src = anchor_s[idx]
        # Σ_i w_i y_i as a sparse (block × source rows) product: no (block, k, d) copy of the rows
        crow = torch.arange(0, src.numel() + 1, k)
        mixed = csr(crow, src.reshape(-1), weights.reshape(-1), (len(block), problem.source.shape[0])) @ source
        result.matrix[block] = mixed.to(result.matrix.dtype)
        record(result, block, src, weights)
    fill_fallback(problem, result, new[~placed])
    return result
