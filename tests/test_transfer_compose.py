"""COMPOSE: FVT blended with a composition map fitted on the source tokenizer's BPE merges."""

from __future__ import annotations

import pytest
import torch

from langshift.errors import ConfigError
from langshift.transfer.apply import transfer
from langshift.transfer.methods import INIT_METHODS, MethodParams, TransferProblem
from langshift.transfer.methods.compose import fit_merge_map, merge_levels


def test_fit_merge_map_recovers_an_exact_linear_composition():
    g = torch.Generator().manual_seed(0)
    d, n = 4, 60
    a_map, b_map, bias = torch.randn(d, d, generator=g), torch.randn(d, d, generator=g), torch.randn(d, generator=g)
    rows = torch.randn(n, d, generator=g, dtype=torch.float64)
    merges = []
    for t in range(20, n):  # every token t >= 20 is composed of two earlier tokens
        a, b = int(torch.randint(0, t, (1,), generator=g)), int(torch.randint(0, t, (1,), generator=g))
        rows[t] = rows[a] @ a_map.double().T + rows[b] @ b_map.double().T + bias.double()
        merges.append((a, b, t))
    w = fit_merge_map(rows, torch.tensor(merges), ridge=1e-9)
    x = torch.cat([rows[[a for a, _, _ in merges]], rows[[b for _, b, _ in merges]], torch.ones(len(merges), 1,
                                                                                                  dtype=rows.dtype)], 1)
    assert torch.allclose(x @ w, rows[[t for _, _, t in merges]], atol=1e-6)
    # float32 rows (a model's): Gram products in float32, still the same map to float32 accuracy
    w32 = fit_merge_map(rows.float(), torch.tensor(merges), ridge=1e-9)
    assert torch.allclose(x @ w32, rows[[t for _, _, t in merges]], rtol=1e-3, atol=1e-3)


def test_merge_levels_respect_dependencies():
    merges = torch.tensor([[0, 1, 5], [5, 2, 6], [6, 5, 7], [3, 4, 8]])
    known = torch.zeros(9, dtype=torch.bool)
    known[:5] = True
    levels = merge_levels(merges, known)
    assert [sorted(lv[:, 2].tolist()) for lv in levels] == [[5, 8], [6], [7]]


def _problem():
    g = torch.Generator().manual_seed(1)
    source = torch.randn(10, 3, generator=g)
    # target ids 0-4 copy source 0-4; 5, 6 are new, spelled by merges and by source pieces
    return TransferProblem(source=source, n_target=7, overlap_target=torch.arange(5), overlap_source=torch.arange(5),
                           generator=g, pieces=[[0], [1], [2], [3], [4], [0, 1], [0, 1, 2]],
                           source_merges=torch.tensor([[0, 1, 5], [5, 2, 6], [1, 2, 7], [3, 4, 8], [2, 3, 9]]),
                           target_merges=torch.tensor([[0, 1, 5], [5, 2, 6]]))


def test_compose_blends_composition_and_fvt_and_copies_the_overlap():
    problem = _problem()
    fn = INIT_METHODS.get("compose")
    full, fvt_only, half = (fn(problem, MethodParams(mix=m)) for m in (1.0, 0.0, 0.5))
    assert torch.equal(half.matrix[:5], problem.source[:5])
    fvt = INIT_METHODS.get("fvt")(problem, MethodParams())
    assert torch.allclose(fvt_only.matrix, fvt.matrix, atol=1e-6)
    w = fit_merge_map(problem.source, problem.source_merges)
    row5 = torch.cat([problem.source[0], problem.source[1], torch.ones(1)]).double() @ w
    row6 = torch.cat([row5, problem.source[2].double(), torch.ones(1, dtype=torch.float64)]) @ w
    assert torch.allclose(full.matrix[5].double(), row5, atol=1e-5)
    assert torch.allclose(full.matrix[6].double(), row6, atol=1e-5)
    assert torch.allclose(half.matrix[5:], 0.5 * full.matrix[5:] + 0.5 * fvt.matrix[5:], atol=1e-5)
    assert half.fallback == {}


def test_compose_through_transfer_is_deterministic_and_refuses_non_bpe(source_bpe, target_bpe, target_unigram):
    import helpers

    model = helpers.tiny_llama(len(source_bpe), tied=False)
    runs = [transfer(helpers.tiny_llama(len(source_bpe), tied=False), source_bpe, target_bpe, "compose")[0]
            for _ in range(2)]
    assert torch.equal(runs[0].get_input_embeddings().weight, runs[1].get_input_embeddings().weight)
    assert torch.equal(runs[0].get_output_embeddings().weight, runs[1].get_output_embeddings().weight)
    with pytest.raises(ConfigError, match="compose"):
        transfer(model, source_bpe, target_unigram, "compose")
