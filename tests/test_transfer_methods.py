"""The pure init methods on synthetic tensors: overlap copies, oracles, determinism, fallbacks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from langshift.errors import LangshiftError
from langshift.transfer.methods import INIT_METHODS, MethodParams, TransferProblem
from langshift.transfer.methods.salt import local_regression_weights
from langshift.transfer.methods.sparsemax import sparsemax_mix
from langshift.transfer.methods.wechsel import procrustes

N_SOURCE, N_TARGET, D, A = 60, 45, 12, 6


def make_problem(seed: int = 0, zero_static: tuple[int, ...] = (), no_pieces: tuple[int, ...] = ()) -> TransferProblem:
    g = torch.Generator().manual_seed(1234)
    source = torch.randn(N_SOURCE, D, generator=g)
    perm = torch.randperm(N_SOURCE, generator=g)
    overlap_target = torch.arange(0, 30, 2)                     # 15 overlap tokens at even ids < 30
    overlap_source = perm[: overlap_target.numel()]
    pieces = [torch.randint(0, N_SOURCE, (int(torch.randint(1, 4, (1,), generator=g)),), generator=g).tolist()
              for _ in range(N_TARGET)]
    for t in no_pieces:
        pieces[t] = []
    target_static = torch.randn(N_TARGET, A, generator=g)
    for t in zero_static:
        target_static[t] = 0
    rot = torch.linalg.qr(torch.randn(A, A, generator=g))[0]
    source_static = torch.randn(N_SOURCE, A, generator=g)
    dict_source = torch.randn(20, A, generator=g)
    def merges(first: int, n: int) -> torch.Tensor:  # each id from `first` on merges two earlier ids
        return torch.tensor([(int(torch.randint(0, t, (1,), generator=g)), int(torch.randint(0, t, (1,), generator=g)),
                              t) for t in range(first, n)])

    return TransferProblem(source=source, n_target=N_TARGET, overlap_target=overlap_target,
                           overlap_source=overlap_source, generator=torch.Generator().manual_seed(seed),
                           pieces=pieces, target_static=target_static, source_static=source_static,
                           dict_source=dict_source, dict_target=dict_source @ rot.T,
                           aux=torch.randn(N_TARGET, A, generator=g),
                           source_merges=merges(10, N_SOURCE), target_merges=merges(20, N_TARGET))


def run(name: str, problem: TransferProblem, **kw):
    return INIT_METHODS.get(name)(problem, MethodParams(block_size=7, **kw))


# 1. Rules every method keeps ---------------------------------------------------------------------

@pytest.mark.parametrize("name", INIT_METHODS.names())
def test_overlap_rows_are_copied_bit_exactly(name):
    problem = make_problem()
    result = run(name, problem)
    assert result.matrix.shape == (N_TARGET, D)
    assert torch.equal(result.matrix[problem.overlap_target], problem.source[problem.overlap_source])
    assert all(result.how[t] == "copied" for t in problem.overlap_target.tolist())
    new = problem.new_ids
    assert all(result.how[t] == name for t in new.tolist())
    assert torch.isfinite(result.matrix).all()
    # new rows are not all the same (except for "mean", by definition)
    assert (name == "mean") or result.matrix[new].std(0).sum() > 0


@pytest.mark.parametrize("name", INIT_METHODS.names())
def test_every_method_is_deterministic_under_a_seed(name):
    a, b = run(name, make_problem(seed=3)), run(name, make_problem(seed=3))
    assert torch.equal(a.matrix, b.matrix)
    assert torch.equal(a.sources, b.sources)


def test_random_depends_on_the_seed_and_follows_the_source_distribution():
    a, b = run("random", make_problem(seed=1)), run("random", make_problem(seed=2))
    new = make_problem().new_ids
    assert not torch.equal(a.matrix[new], b.matrix[new])
    big = TransferProblem(source=make_problem().source, n_target=4000, overlap_target=torch.tensor([0]),
                          overlap_source=torch.tensor([0]), generator=torch.Generator().manual_seed(0))
    rows = run("random", big).matrix[1:]
    src = big.source
    assert torch.allclose(rows.mean(0), src.mean(0), atol=0.12)
    assert torch.allclose(torch.cov(rows.T), torch.cov(src.T), atol=0.25)


def test_mean_rows_are_the_source_mean():
    problem = make_problem()
    result = run("mean", problem)
    assert torch.allclose(result.matrix[problem.new_ids], problem.source.mean(0).expand(len(problem.new_ids), D))


def test_unknown_method_lists_close_names():
    with pytest.raises(LangshiftError, match="Did you mean 'focus'"):
        INIT_METHODS.get("focsu", "--method")


# 2. FVT -------------------------------------------------------------------------------------------

def test_fvt_rows_are_the_mean_of_the_source_pieces():
    problem = make_problem(no_pieces=(1,))
    result = run("fvt", problem)
    for t in problem.new_ids.tolist():
        if t == 1:
            assert torch.allclose(result.matrix[t], problem.source.mean(0), atol=1e-6)
            assert result.fallback[t] == "mean"
            continue
        hand = sum(problem.source[s] for s in problem.pieces[t]) / len(problem.pieces[t])
        assert torch.allclose(result.matrix[t], hand, atol=1e-6)
        assert set(result.sources[t][result.sources[t] >= 0].tolist()) == set(problem.pieces[t])


# 3. Sparsemax / FOCUS against a per-token reference -----------------------------------------------

def sparsemax_reference(z: np.ndarray) -> np.ndarray:
    """Martins & Astudillo (2016), Algorithm 1, for one vector."""
    s = np.sort(z)[::-1]
    cums = np.cumsum(s)
    ks = np.arange(1, len(z) + 1)
    k = ks[1 + ks * s > cums].max()
    tau = (cums[k - 1] - 1) / k
    return np.maximum(z - tau, 0)


@pytest.mark.parametrize("dim,exact_queries", [(20, False), (3, False), (50, True)],
                         ids=["spread", "concentrated-dense", "sparse-csr"])
def test_blocked_sparsemax_equals_a_per_token_loop(dim, exact_queries):
    g = torch.Generator().manual_seed(0)
    keys, values = torch.randn(500, dim, generator=g), torch.randn(500, 9, generator=g)
    q = keys[torch.randperm(500, generator=g)[:300]].clone() if exact_queries else torch.randn(300, dim, generator=g)
    rows, top_i, top_w = sparsemax_mix(q, keys, values, block_size=64, progress=False)
    qn = (q / q.norm(dim=1, keepdim=True)).double().numpy()
    kn = (keys / keys.norm(dim=1, keepdim=True)).double().numpy()
    for i in range(q.shape[0]):
        w = sparsemax_reference(kn @ qn[i])
        assert abs(w.sum() - 1) < 1e-9
        np.testing.assert_allclose(rows[i].numpy(), w @ values.double().numpy(), atol=1e-5)
        assert top_w[i, 0].item() == pytest.approx(w.max(), abs=1e-5)
    assert (top_w >= 0).all()


@pytest.mark.parametrize("scale,width", [(1.0, 1000), (30.0, 1000), (1e-4, 999), (0.05, 37), (1.0, 1)])
def test_sparsemax_rows_equals_entmax(scale, width):
    """Supports from one entry (large scale) to the whole row (tiny scale); widths that are not whole chunks."""
    from entmax import sparsemax

    from langshift.transfer.methods.sparsemax import sparsemax_rows

    z = torch.randn(257, width, generator=torch.Generator().manual_seed(1)) * scale
    ours, oracle = sparsemax_rows(z), sparsemax(z, dim=-1)
    assert torch.allclose(ours, oracle, atol=1e-6)
    assert torch.allclose(ours.sum(1), torch.ones(257), atol=1e-5)


def test_sparsemax_ignores_minus_infinity_and_ranks_the_support_heaviest_first():
    from langshift.transfer.methods.sparsemax import sparsemax_ranked

    z = torch.tensor([[0.5, float("-inf"), 0.2, 0.45], [float("-inf"), 3.0, float("-inf"), 0.0]])
    weights, cols = sparsemax_ranked(z)
    # τ = (0.5 + 0.45 + 0.2 − 1) / 3 = 0.05
    assert weights[0, :3].tolist() == pytest.approx([0.45, 0.4, 0.15]) and cols[0, :3].tolist() == [0, 3, 2]
    assert weights[0, 3:].abs().sum() == 0
    assert weights[1, 0].item() == 1.0 and cols[1, 0].item() == 1 and weights[1, 1:].abs().sum() == 0


@pytest.mark.parametrize("name", ["focus", "migrate"])
def test_focus_equals_the_per_token_formula_and_falls_back_without_vectors(name):
    problem = make_problem(zero_static=(1, 3), no_pieces=(3,))
    result = run(name, problem)
    static = problem.target_static.double()
    keys = static[problem.overlap_target]
    kn = (keys / keys.norm(dim=1, keepdim=True)).numpy()
    for t in problem.new_ids.tolist():
        if t in (1, 3):
            continue
        w = sparsemax_reference(kn @ (static[t] / static[t].norm()).numpy())
        hand = w @ problem.source[problem.overlap_source].double().numpy()
        np.testing.assert_allclose(result.matrix[t].numpy(), hand, atol=1e-5)
        # provenance: the heaviest sources (overlap source ids), unused slots -1 with weight 0
        used = result.sources[t] >= 0
        assert torch.equal(used, result.weights[t] > 0)
        heaviest = problem.overlap_source[int(np.argmax(w))].item()
        assert result.sources[t, 0].item() == heaviest and result.weights[t, 0].item() == pytest.approx(w.max(), abs=1e-6)
    assert result.fallback == {1: "fvt", 3: "mean"}
    hand1 = problem.source[problem.pieces[1]].mean(0)
    assert torch.allclose(result.matrix[1], hand1, atol=1e-6)
    assert torch.allclose(result.matrix[3], problem.source.mean(0), atol=1e-6)


# 4. SALT against a hand least-squares fit -------------------------------------------------------

def test_salt_weights_equal_a_hand_lstsq_with_intercept():
    g = torch.Generator().manual_seed(5)
    # over-determined: k = 10 neighbours, a = 3 dims (+ intercept) -> a unique least-squares fit
    nb, y, x = torch.randn(1, 10, 3, generator=g), torch.randn(10, 4, generator=g), torch.randn(1, 3, generator=g)
    w = local_regression_weights(x, nb, ridge=0.0)
    design = np.hstack([nb[0].double().numpy(), np.ones((10, 1))])
    coef, *_ = np.linalg.lstsq(design, y.double().numpy(), rcond=None)
    hand = np.append(x[0].double().numpy(), 1.0) @ coef
    np.testing.assert_allclose((w[0] @ y).numpy(), hand, atol=1e-5)
    # under-determined: k = 4 < a = 8 -> minimum-norm map with an unpenalised intercept
    nb, y, x = torch.randn(1, 4, 8, generator=g), torch.randn(4, 5, generator=g), torch.randn(1, 8, generator=g)
    w = local_regression_weights(x, nb, ridge=0.0)
    xm, ym = nb[0].double().mean(0), y.double().mean(0)
    coef = np.linalg.pinv((nb[0].double() - xm).numpy()) @ (y.double() - ym).numpy()
    hand = ym.numpy() + (x[0].double() - xm).numpy() @ coef
    np.testing.assert_allclose((w[0] @ y).numpy(), hand, atol=1e-5)
    # with a ridge (Gram products in float32): the closed-form ridge fit on centred data, in float64
    nb, y, x = torch.randn(3, 12, 30, generator=g), torch.randn(12, 5, generator=g), torch.randn(3, 30, generator=g)
    w = local_regression_weights(x, nb, ridge=0.5)
    for b in range(3):
        xc = (nb[b] - nb[b].mean(0)).double().numpy()
        lam = 0.5 * np.trace(xc @ xc.T) / 12
        coef = xc.T @ np.linalg.solve(xc @ xc.T + lam * np.eye(12), (y.double() - y.double().mean(0)).numpy())
        hand = y.double().mean(0).numpy() + (x[b].double() - nb[b].double().mean(0)).numpy() @ coef
        np.testing.assert_allclose((w[b] @ y).numpy(), hand, atol=1e-5)
    # ridge shrinks toward the neighbours' mean
    nb, x = nb[:1, :4, :8], x[:1, :8]
    w_big = local_regression_weights(x, nb, ridge=1e6)
    assert torch.allclose(w_big, torch.full_like(w_big, 0.25), atol=1e-4)


def test_salt_method_matches_hand_fit_on_its_nearest_overlap_tokens():
    problem = make_problem()
    result = run("salt", problem, k=9, ridge=0.0)
    aux = problem.aux.double()
    anchors = aux[problem.overlap_target]
    unit = anchors / anchors.norm(dim=1, keepdim=True)
    for t in problem.new_ids.tolist()[:6]:
        idx = np.argsort(-(unit @ (aux[t] / aux[t].norm())).numpy())[:9]
        design = np.hstack([anchors[idx].numpy(), np.ones((9, 1))])
        rows = problem.source[problem.overlap_source[idx]].double().numpy()
        coef, *_ = np.linalg.lstsq(design, rows, rcond=None)
        np.testing.assert_allclose(result.matrix[t].numpy(), np.append(aux[t].numpy(), 1.0) @ coef, atol=1e-4)


# 5. WECHSEL on tiny aligned spaces ----------------------------------------------------------------

def test_procrustes_recovers_a_rotation():
    g = torch.Generator().manual_seed(2)
    rot = torch.linalg.qr(torch.randn(5, 5, generator=g))[0]
    a = torch.randn(30, 5, generator=g)
    w = procrustes(a @ rot, a)
    assert torch.allclose(w, rot.T, atol=1e-5)


def test_wechsel_finds_the_translation_through_the_dictionary():
    g = torch.Generator().manual_seed(3)
    problem = make_problem()
    rot = torch.linalg.qr(torch.randn(A, A, generator=g))[0]
    # the target space is the source space rotated; new target token t "translates" source token 2t
    problem.dict_source = torch.randn(25, A, generator=g)
    problem.dict_target = problem.dict_source @ rot
    new = problem.new_ids
    problem.target_static = torch.randn(N_TARGET, A, generator=g)
    problem.target_static[new] = problem.source_static[new * 1] @ rot
    result = run("wechsel", problem, k=3, temperature=0.1)
    src_unit = problem.source_static / problem.source_static.norm(dim=1, keepdim=True)
    for t in new.tolist():
        assert result.sources[t, 0].item() == t          # its own translation is the nearest neighbour
        sims, idx = (src_unit @ src_unit[t]).topk(3)
        w = torch.softmax(sims / 0.1, 0)
        assert torch.allclose(result.matrix[t], w @ problem.source[idx], atol=1e-4)
