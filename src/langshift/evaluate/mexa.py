"""MEXA: per-layer cross-lingual alignment from parallel sentences (Kargaran et al. 2024, cisnlp/MEXA).

What the reference code (``embed_extractor.py`` + ``compute_mexa.py``) does, and what we do by default:
  * each sentence is encoded as the tokenizer encodes it by default (special tokens included: a BOS
    when the tokenizer adds one) and run alone through the model; every entry of ``hidden_states`` is a
    layer, the embedding output (layer 0) included, and all of them are pooled into the mean and max;
  * sentence vector of a layer = position-weighted mean of its hidden states (weight t for the t-th
    token, t = 1..n) — or, as their alternative, the last token's hidden state (``pooling="last"``);
  * S_ij = cos(en_i, xx_j); the layer's score is the share of pairs i with S_ii > max_{j≠i} S_ij and
    S_ii > max_{j≠i} S_ji; scores are aggregated by the mean and the max over layers.
We batch (right padding + attention mask, sentences sorted by length): same vectors as one at a time.

Two options that are NOT in MEXA (off by default), for models whose raw cosines carry no signal:
  * ``exclude_first``: leave the first position out of the mean. It is the attention-sink token (BOS, or
    the first word when there is no BOS) whose hidden state has "massive activations" (SmolLM2-135M:
    norm ~22,000 in the middle layers vs ~200 elsewhere), so it adds a large length-dependent offset.
  * ``centre``: subtract each language's mean sentence vector (per layer) before the cosines. Raw
    cosines of small models are dominated by directions shared by every sentence (a few outlier
    channels) and by a language offset larger than the differences between sentences; centring
    measures whether translations sit at the same place relative to their language's centre.
``precision="bfloat16"`` runs the matrix products in bfloat16 (torch autocast; the residual stream and
the norms stay in the model's dtype); on CPUs with AMX/AVX512-BF16 it is ~4x faster than float32.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext

import numpy as np
from tqdm.auto import tqdm

from ..errors import ConfigError
from .intervals import bootstrap_ratio
from .plots import save_axes

POOLINGS = ("weighted", "last")
PRECISIONS = ("model", "bfloat16")


# 1. Pooling: one vector per sentence and layer ----------------------------------------------------

def pooling_weights(mask, pooling: str = "weighted", exclude_first: bool = False):
    """(batch, seq) weights from a right-padded 0/1 ``mask``, each row summing to 1.

    weighted: t for the t-th real token (later tokens have seen more context); last: the last real token.
    ``exclude_first`` gives the first position weight 0 (the others keep theirs)."""
    import torch

    mask = mask.to(torch.float64)
    if pooling == "weighted":
        w = torch.cumsum(mask, dim=1) * mask
    elif pooling == "last":
        w = torch.zeros_like(mask)
        w[torch.arange(mask.shape[0]), mask.sum(dim=1).long() - 1] = 1.0
    else:
        raise ConfigError("pooling", pooling, f"use one of {', '.join(POOLINGS)}")
    if exclude_first:
        w[:, 0] = 0.0
    total = w.sum(dim=1, keepdim=True)
    if bool((total == 0).any()):
        raise ConfigError("exclude_first", True, "a sentence has a single token, so nothing is left to pool; "
                                                 "remove one-token sentences or set exclude_first=False")
    return w / total


def pool_layers(hidden, weights):
    """(layers, batch, seq, dim) hidden states × (batch, seq) weights → (layers, batch, dim).

    Half-precision states are pooled in float32, float32/float64 states in their own dtype."""
    import torch

    dtype = torch.promote_types(hidden.dtype, torch.float32)
    return torch.einsum("lbsd,bs->lbd", hidden.to(dtype), weights.to(dtype))


# 2. Sentence vectors: batched forward passes, all requested layers at once -------------------------

def precision_context(model, precision: str):
    """Context manager for ``precision``: "model" runs as loaded; "bfloat16" autocasts matrix products."""
    import torch

    if precision not in PRECISIONS:
        raise ConfigError("precision", precision, f"use one of {', '.join(PRECISIONS)}")
    if precision == "model":
        return nullcontext()
    device = next(model.parameters()).device
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def sentence_vectors(model, tokenizer, sentences: Sequence[str], batch_size: int = 32, max_length: int = 128,
                     layers: Sequence[int] | None = None, pooling: str = "weighted", exclude_first: bool = False,
                     precision: str = "model", progress: bool = True, desc: str = "sentence vectors") -> np.ndarray:
    """(layers, n, dim) float64 array of pooled hidden states; ``layers`` index ``hidden_states``
    (0 = embedding output, k = output of block k; default: all). Output keeps the input order."""
    import torch

    if isinstance(sentences, str) or not sentences:
        raise ConfigError("sentences", sentences, "give a non-empty list of sentences")
    if batch_size < 1:
        raise ConfigError("batch_size", batch_size, "must be at least 1")
    if pooling not in POOLINGS:
        raise ConfigError("pooling", pooling, f"use one of {', '.join(POOLINGS)}")
    encoded = tokenizer(list(sentences), truncation=True, max_length=max_length)["input_ids"]
    for i, ids in enumerate(encoded):
        if not ids:
            raise ConfigError(f"sentences[{i}]", sentences[i], "gives no tokens; remove empty sentences")
    n_states = model.config.num_hidden_layers + 1
    chosen = list(range(n_states)) if layers is None else list(layers)
    bad = [k for k in chosen if not 0 <= k < n_states]
    if bad or not chosen:
        raise ConfigError("layers", list(layers or []), f"give indices in 0..{n_states - 1} (0 = embeddings)")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    # Longest first, so batches hold similar lengths (little padding) and memory peaks at once.
    order = sorted(range(len(encoded)), key=lambda k: -len(encoded[k]))
    body = model.base_model  # hidden states only: skip the LM head (a third of the compute at 49k tokens)
    device = next(model.parameters()).device
    out = np.zeros((len(chosen), len(sentences), model.config.hidden_size), dtype=np.float64)
    # One autocast context around the loop (weights are cast once); pooling runs with autocast off.
    with torch.inference_mode(), precision_context(model, precision):
        for start in tqdm(range(0, len(order), batch_size), desc=desc, disable=not progress):
            idx = order[start:start + batch_size]
            width = len(encoded[idx[0]])
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for r, k in enumerate(idx):
                ids[r, :len(encoded[k])] = torch.tensor(encoded[k])
                mask[r, :len(encoded[k])] = 1
            hs = body(input_ids=ids.to(device), attention_mask=mask.to(device), output_hidden_states=True,
                      use_cache=False).hidden_states
            with torch.autocast(device_type=device.type, enabled=False):
                weights = pooling_weights(mask, pooling, exclude_first).to(device)
                vecs = pool_layers(torch.stack([hs[k] for k in chosen]), weights)
            out[:, idx, :] = vecs.double().cpu().numpy()
    return out


# 3. Alignment score of one layer -------------------------------------------------------------------

def alignment_score(en: np.ndarray, xx: np.ndarray, centre: bool = False) -> float:
    """Share of pairs whose mutual cosine beats every other sentence in its row and its column.

    ``centre`` first subtracts each side's mean vector (not in MEXA; see the module doc)."""
    return float(pair_hits(en, xx, centre).mean())


def pair_hits(en: np.ndarray, xx: np.ndarray, centre: bool = False) -> np.ndarray:
    """Per pair: does its mutual cosine beat every other sentence in its row and its column?"""
    if en.ndim != 2 or en.shape != xx.shape or en.shape[0] < 2:
        raise ConfigError("pairs", en.shape[0], "need at least 2 parallel pairs of equal count")
    if centre:
        en, xx = en - en.mean(axis=0), xx - xx.mean(axis=0)
    a = en / np.maximum(np.linalg.norm(en, axis=1, keepdims=True), 1e-12)
    b = xx / np.maximum(np.linalg.norm(xx, axis=1, keepdims=True), 1e-12)
    s = a @ b.T
    diag = np.diag(s).copy()
    np.fill_diagonal(s, -np.inf)
    return (diag > s.max(axis=1)) & (diag > s.max(axis=0))


# 4. Public entry point -----------------------------------------------------------------------------

def read_pairs(path, param: str, n: int | None = None) -> list[tuple[str, str]]:
    """The first ``n`` (English, other-language) sentence pairs of a JSONL file of {en, xx} objects."""
    from ..errors import LangshiftError
    from ..files import read_json_lines

    pairs = []
    for number, row in read_json_lines(path, param):
        if not (isinstance(row.get("en"), str) and isinstance(row.get("xx"), str)):
            raise LangshiftError(f"{param}={str(path)!r}: line {number} needs string fields 'en' and 'xx'")
        pairs.append((row["en"], row["xx"]))
    return pairs[:n]


def mexa(model, tokenizer, pairs: Sequence[tuple[str, str]], batch_size: int = 32, max_length: int = 128,
         include_embeddings: bool = True, pooling: str = "weighted", exclude_first: bool = False,
         centre: bool = False, precision: str = "model", progress: bool = True) -> dict:
    """Per-layer MEXA scores of (English, other-language) sentence pairs, with mean and max.

    Defaults follow the reference code; ``include_embeddings=False`` scores the block outputs only."""
    if len(pairs) < 2:
        raise ConfigError("pairs", len(pairs), "need at least 2 parallel sentence pairs")
    first = 0 if include_embeddings else 1
    layers = list(range(first, model.config.num_hidden_layers + 1))
    opts = dict(layers=layers, pooling=pooling, exclude_first=exclude_first, precision=precision,
                progress=progress)
    en = sentence_vectors(model, tokenizer, [p[0] for p in pairs], batch_size, max_length, desc="MEXA (English)",
                          **opts)
    xx = sentence_vectors(model, tokenizer, [p[1] for p in pairs], batch_size, max_length, desc="MEXA (target)",
                          **opts)
    hits = np.stack([pair_hits(en[k], xx[k], centre) for k in range(len(layers))])  # [layers, pairs]
    scores = hits.mean(axis=1).tolist()
    # 95% interval of the mean over layers, resampling pairs (each pair's hit rate across layers;
    # the candidate set each pair competed against stays the full one)
    low, high = bootstrap_ratio(hits.mean(axis=0))
    return {"n_pairs": len(pairs), "layers": layers, "scores": scores,
            "mean": float(np.mean(scores)), "mean_low": low, "mean_high": high, "max": float(np.max(scores)),
            "best_layer": layers[int(np.argmax(scores))],
            "settings": {"pooling": pooling, "exclude_first": exclude_first, "centre": centre,
                         "precision": precision, "include_embeddings": include_embeddings,
                         "max_length": max_length}}


def plot_mexa(results: dict[str, dict], path, title: str = "MEXA alignment per layer") -> None:
    """One line per model (label → ``mexa`` result) into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, res in results.items():
        ax.plot(res["layers"], res["scores"], marker="o", ms=3, label=f"{label} (mean {res['mean']:.2f})")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    save_axes(fig, ax, path, "layer", "alignment score")
