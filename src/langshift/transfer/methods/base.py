"""What every init method reads and returns, the registry, and the steps all methods share.

An init method is a pure function ``fn(problem, params) -> InitResult`` over tensors (``params``: a
``MethodParams``, usually the ``TransferOptions`` the transfer was asked with): it never sees
a tokenizer or a file. ``apply.py`` builds the ``TransferProblem`` (overlap, source pieces, static
vectors) from tokenizers and models; the method only turns those tensors into a target matrix.

Rules common to all methods (one place, so they cannot drift apart):
  * overlapping tokens are copied bit-exactly from their source rows (FOCUS, FVT, WECHSEL and
    MIGRATE all copy the overlap; ``random`` copies it too, so methods differ only on new tokens);
  * a new token the method cannot place (no static vector at all, e.g. a partial UTF-8 byte with
    no character n-gram) falls back to FVT (mean of its source pieces), else to the source mean;
    the fallback is recorded per token.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from ...registry import Registry
from ..config import MethodParams as MethodParams  # the knobs a method reads; TransferOptions adds to them

INIT_METHODS: Registry[Callable] = Registry("init method", modules=[
    "langshift.transfer.methods.baseline",
    "langshift.transfer.methods.fvt",
    "langshift.transfer.methods.focus",
    "langshift.transfer.methods.wechsel",
    "langshift.transfer.methods.salt",
    "langshift.transfer.methods.compose",
])

# What a method may ask ``apply`` to build for it (``fn.needs``).
NEEDS = {
    "static": "static vectors of every target token in an auxiliary (target-language) space",
    "source_static": "static vectors of every source token in a source-language space",
    "dictionary": "static vectors of bilingual dictionary pairs (source space, target space)",
    "aux": "auxiliary vectors of every target token: a target-language model's input rows or static vectors",
    "merges": "the BPE merges of both tokenizers as (a, b, merged) id triples",
}


def init_method(name: str, needs: tuple[str, ...] = ()) -> Callable[[Callable], Callable]:
    """Register ``fn(problem, params) -> InitResult`` under ``name`` and note what it needs."""
    unknown = set(needs) - set(NEEDS)
    if unknown:
        raise ValueError(f"unknown needs {unknown}; known: {sorted(NEEDS)}")

    def add(fn: Callable) -> Callable:
        fn.needs = frozenset(needs)
        return INIT_METHODS.register(name)(fn)

    return add


@dataclass
class TransferProblem:
    """Everything a method may read, as tensors indexed by token id.

    ``source`` holds one row per source-vocabulary token (padding rows already dropped); with an
    untied head it is the input and output matrices side by side, so every target row is built
    from its own source rows with the same weights. A zero row in a static/aux tensor means
    "no vector for this token".
    """

    source: torch.Tensor                       # (n_source, d) float32
    n_target: int
    overlap_target: torch.Tensor               # (n_o,) long: target ids copied ...
    overlap_source: torch.Tensor               # (n_o,) long: ... from these source ids
    generator: torch.Generator
    pieces: Sequence[list[int]] | None = None  # per target id: source ids spelling it ([] = none)
    target_static: torch.Tensor | None = None  # (n_target, a)
    source_static: torch.Tensor | None = None  # (n_source, a)
    dict_source: torch.Tensor | None = None    # (m, a) dictionary source words, source space
    dict_target: torch.Tensor | None = None    # (m, a) their translations, target space
    aux: torch.Tensor | None = None            # (n_target, b) salt's auxiliary vectors
    source_merges: torch.Tensor | None = None  # (m, 3) long: source BPE merges as (a, b, merged) ids
    target_merges: torch.Tensor | None = None  # (m', 3) long: target BPE merges, in merge order

    def __post_init__(self) -> None:
        if self.overlap_target.shape != self.overlap_source.shape:
            raise ValueError("overlap_target and overlap_source differ in length")
        if self.source.ndim != 2 or self.source.shape[0] == 0:
            raise ValueError(f"source must be a non-empty (n_source, d) matrix, got {tuple(self.source.shape)}")

    @property
    def new_ids(self) -> torch.Tensor:
        """Target ids not in the overlap, ascending."""
        mask = torch.ones(self.n_target, dtype=torch.bool)
        mask[self.overlap_target] = False
        return mask.nonzero().squeeze(1)


@dataclass
class InitResult:
    """The target matrix and, per target token, how its row was made."""

    matrix: torch.Tensor                      # (n_target, d)
    how: list[str]                            # "copied" or the method's name
    sources: torch.Tensor                     # (n_target, m) long, -1 = unused slot
    weights: torch.Tensor                     # (n_target, m) float
    fallback: dict[int, str] = field(default_factory=dict)  # target id -> "fvt" | "mean"


# Steps shared by the methods ----------------------------------------------------------------------

def start_result(problem: TransferProblem, method: str, slots: int = 1) -> InitResult:
    """A result whose overlap rows are copied bit-exactly and whose other rows are still empty."""
    n, d = problem.n_target, problem.source.shape[1]
    matrix = torch.zeros(n, d, dtype=problem.source.dtype)
    matrix[problem.overlap_target] = problem.source[problem.overlap_source]
    how = [method] * n
    for t in problem.overlap_target.tolist():
        how[t] = "copied"
    slots = max(slots, 1)
    sources = torch.full((n, slots), -1, dtype=torch.long)
    weights = torch.zeros(n, slots)
    sources[problem.overlap_target, 0] = problem.overlap_source
    weights[problem.overlap_target, 0] = 1.0
    return InitResult(matrix, how, sources, weights)


def record(result: InitResult, ids: torch.Tensor, src: torch.Tensor, w: torch.Tensor) -> None:
    """Keep the heaviest sources of each row in ``ids`` for the provenance."""
    m = min(result.sources.shape[1], src.shape[1])
    top_w, order = w.abs().topk(m, dim=1)
    result.sources[ids, :m] = src.gather(1, order)
    result.weights[ids, :m] = w.gather(1, order)
    result.sources[ids, m:] = -1
    result.weights[ids, m:] = 0.0


_GATHER_ROWS = 4096


def piece_means(source: torch.Tensor, pieces: Sequence[list[int]], ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean source row over each token's pieces (FVT), and a mask of tokens that have pieces."""
    if hasattr(pieces, "spell"):  # lazily spelt pieces (transfer.pieces.SourcePieces): one batch for all ids
        pieces.spell(ids)
    rows, cols = [], []
    for r, t in enumerate(ids):
        for s in pieces[t]:
            rows.append(r)
            cols.append(s)
    out = torch.zeros(len(ids), source.shape[1], dtype=source.dtype)
    counts = torch.zeros(len(ids), dtype=source.dtype)
    if rows:
        r, c = torch.tensor(rows, dtype=torch.long), torch.tensor(cols, dtype=torch.long)
        # in chunks: gathering every piece row at once costs pieces x width floats (2.6 GB at 8k columns)
        for i in range(0, len(rows), _GATHER_ROWS):
            out.index_add_(0, r[i:i + _GATHER_ROWS], source[c[i:i + _GATHER_ROWS]])
        counts.index_add_(0, r, torch.ones(len(rows), dtype=source.dtype))
    has = counts > 0
    out[has] /= counts[has].unsqueeze(1)
    return out, has


def record_pieces(result: InitResult, pieces: Sequence[list[int]] | None, ids: list[int]) -> None:
    """Provenance of FVT-made rows: each token's first pieces (as many as there are slots), each
    weighing 1/len(pieces); other slots unused. One scatter for all tokens (a 27k-token loop took 1 s)."""
    slots = result.sources.shape[1]
    rows, cols, srcs, weights = [], [], [], []
    for r, t in enumerate(ids):
        found = pieces[t] if pieces is not None else []
        for c, s in enumerate(found[:slots]):
            rows.append(r)
            cols.append(c)
            srcs.append(s)
            weights.append(1.0 / len(found))
    at = torch.tensor(ids, dtype=torch.long)
    result.sources[at] = -1
    result.weights[at] = 0.0
    if rows:
        target = at[torch.tensor(rows, dtype=torch.long)]
        col = torch.tensor(cols, dtype=torch.long)
        result.sources[target, col] = torch.tensor(srcs, dtype=torch.long)
        result.weights[target, col] = torch.tensor(weights, dtype=result.weights.dtype)


def fill_fallback(problem: TransferProblem, result: InitResult, ids: torch.Tensor) -> None:
    """Rows a method could not place: FVT from the token's source pieces, else the source mean."""
    if ids.numel() == 0:
        return
    id_list = ids.tolist()
    if problem.pieces is not None:
        rows, has = piece_means(problem.source, problem.pieces, id_list)
    else:
        rows, has = torch.zeros(len(id_list), problem.source.shape[1]), torch.zeros(len(id_list), dtype=torch.bool)
    rows[~has] = problem.source.mean(0)
    result.matrix[ids] = rows
    for t, h in zip(id_list, has.tolist(), strict=True):
        result.fallback[t] = "fvt" if h else "mean"
    record_pieces(result, problem.pieces, id_list)


def unit_rows(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to length 1 (zero rows stay zero)."""
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)


def has_vector(x: torch.Tensor | None, ids: torch.Tensor) -> torch.Tensor:
    """Mask over ``ids``: the token has a non-zero static/aux vector."""
    if x is None:
        return torch.zeros(ids.numel(), dtype=torch.bool)
    return x[ids].abs().sum(1) > 0


def blocks(n: int, size: int):
    for start in range(0, n, max(size, 1)):
        yield slice(start, min(start + size, n))
