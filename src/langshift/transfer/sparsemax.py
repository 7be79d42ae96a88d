"""FOCUS / MIGRATE eq. 7, vectorised: rows = sparsemax(cos(q, keys)) @ values, in blocks of queries.

A per-token loop costs one (n_keys,) similarity row, one sort and one weighted sum per token —
milliseconds each, minutes at a 32k vocabulary. Here a block of B queries makes one (B, n_keys)
similarity matrix (one matmul), entmax's sparsemax over its rows (a partial sort of the top
``k_hint``, widened by entmax itself when a row's support is larger; a full sort once supports are
seen to be large), and one sparse-dense product (or a dense one when the weights are not sparse).
Memory is bounded by B × n_keys floats per block.
"""

from __future__ import annotations

import warnings

import torch
from tqdm.auto import tqdm

from .methods.base import blocks, unit_rows


def sparsemax_mix(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, block_size: int = 1024,
                  slots: int = 8, k_hint: int = 64, progress: bool = True
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each query row: sparsemax over cosine similarities to ``keys``, then the weighted sum of
    ``values``. Returns (rows (n, d), top key indices (n, slots), their weights (n, slots))."""
    from entmax import sparsemax

    if keys.shape[0] != values.shape[0]:
        raise ValueError(f"{keys.shape[0]} keys but {values.shape[0]} value rows")
    n, m = queries.shape[0], keys.shape[0]
    slots = min(slots, m)
    q, kk = unit_rows(queries.float()), unit_rows(keys.float())
    rows = torch.zeros(n, values.shape[1], dtype=values.dtype)
    top_i = torch.zeros(n, slots, dtype=torch.long)
    top_w = torch.zeros(n, slots)
    hint = min(k_hint, m) if k_hint else None
    for sl in tqdm(list(blocks(n, block_size)), desc="sparsemax", unit="block", disable=not progress or n == 0):
        sim = q[sl] @ kk.T                                          # (B, m) cosine similarities
        w = sparsemax(sim, dim=-1, k=hint)
        support = (w > 0).sum(1)
        # Concentrated spaces (all cosines alike) give supports of hundreds: there a full sort beats
        # entmax's doubling partial sorts, and a dense product beats a sparse one.
        if hint is not None and int(support.max()) >= hint:
            hint = None
        if int(support.sum()) > 0.05 * w.numel():
            rows[sl] = (w @ values.float()).to(values.dtype)
        else:
            with warnings.catch_warnings():  # torch flags CSR as beta; the product is exact and tested
                warnings.simplefilter("ignore", UserWarning)
                rows[sl] = (w.to_sparse_csr() @ values.float()).to(values.dtype)
        top_w[sl], top_i[sl] = w.topk(slots, dim=1)
    return rows, top_i, top_w
