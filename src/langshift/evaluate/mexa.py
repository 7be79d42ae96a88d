"""MEXA: per-layer cross-lingual alignment from parallel sentences (cisnlp/MEXA, as DESIGN.md reads it).

For every layer: sentence vector = position-weighted mean of the layer's hidden states (weight t for
the t-th real token, t = 1..n; padding excluded); S_ij = cos(en_i, xx_j); the layer's score is the
share of pairs i with S_ii > max_{j≠i} S_ij and S_ii > max_{j≠i} S_ji. Scores are aggregated by the
mean and the max over layers. "Layers" are the outputs of the transformer blocks (hidden_states[1:]);
the embedding output can be included on request.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tqdm.auto import tqdm

from ..errors import ConfigError

# 1. Sentence vectors: position-weighted mean per layer ---------------------------------------------


def weighted_mean(hidden, mask):
    """(batch, seq, dim) hidden states and a right-padded (batch, seq) 0/1 mask → (batch, dim) with
    weight t for the t-th real token (position-weighted mean: later tokens have seen more context)."""
    import torch

    weights = torch.cumsum(mask, dim=1) * mask  # 1, 2, …, n on real tokens, 0 on padding
    weights = weights.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1)


def sentence_vectors(model, tokenizer, sentences: Sequence[str], batch_size: int = 16, max_length: int = 128,
                     include_embeddings: bool = False, layers: Sequence[int] | None = None,
                     progress: bool = True, desc: str = "sentence vectors") -> np.ndarray:
    """(layers, n, dim) float64 array of position-weighted mean hidden states, batched with right padding.

    Sentences are sorted by length so that batches hold similar lengths; the output keeps input order.
    """
    import torch

    if not sentences:
        raise ConfigError("sentences", [], "no sentences given")
    encoded = [list(tokenizer(s, truncation=True, max_length=max_length)["input_ids"]) for s in sentences]
    for i, ids in enumerate(encoded):
        if not ids:
            raise ConfigError(f"sentences[{i}]", sentences[i], "gives no tokens; remove empty sentences")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    order = sorted(range(len(encoded)), key=lambda k: -len(encoded[k]))
    body = model.base_model  # hidden states only: skip the LM head (a third of the compute at 49k tokens)
    device = next(model.parameters()).device
    out = None
    with torch.inference_mode():
        for start in tqdm(range(0, len(order), batch_size), desc=desc, disable=not progress):
            idx = order[start:start + batch_size]
            width = max(len(encoded[k]) for k in idx)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for r, k in enumerate(idx):
                ids[r, :len(encoded[k])] = torch.tensor(encoded[k])
                mask[r, :len(encoded[k])] = 1
            hs = body(input_ids=ids.to(device), attention_mask=mask.to(device), output_hidden_states=True,
                      use_cache=False).hidden_states
            chosen = list(hs if include_embeddings else hs[1:])
            if layers is not None:
                chosen = [chosen[i] for i in layers]
            vecs = torch.stack([weighted_mean(h.double(), mask.to(h.device)) for h in chosen])  # (L, b, d)
            if out is None:
                out = np.zeros((vecs.shape[0], len(sentences), vecs.shape[2]), dtype=np.float64)
            out[:, idx, :] = vecs.cpu().numpy()
    return out


# 2. Alignment score of one layer -------------------------------------------------------------------

def alignment_score(en: np.ndarray, xx: np.ndarray) -> float:
    """Share of pairs whose mutual cosine beats every other sentence in its row and its column."""
    if en.shape != xx.shape or en.shape[0] < 2:
        raise ConfigError("pairs", en.shape[0], "need at least 2 parallel pairs of equal count")
    a = en / np.maximum(np.linalg.norm(en, axis=1, keepdims=True), 1e-12)
    b = xx / np.maximum(np.linalg.norm(xx, axis=1, keepdims=True), 1e-12)
    s = a @ b.T
    diag = np.diag(s).copy()
    off = s.copy()
    np.fill_diagonal(off, -np.inf)
    ok = (diag > off.max(axis=1)) & (diag > off.max(axis=0))
    return float(ok.mean())


# 3. Public entry point -----------------------------------------------------------------------------

def mexa(model, tokenizer, pairs: Sequence[tuple[str, str]], batch_size: int = 16, max_length: int = 128,
         include_embeddings: bool = False, progress: bool = True) -> dict:
    """Per-layer MEXA scores of (English, other-language) sentence pairs, with mean and max."""
    if len(pairs) < 2:
        raise ConfigError("pairs", len(pairs), "need at least 2 parallel sentence pairs")
    en = sentence_vectors(model, tokenizer, [p[0] for p in pairs], batch_size, max_length, include_embeddings,
                          progress=progress, desc="MEXA (English)")
    xx = sentence_vectors(model, tokenizer, [p[1] for p in pairs], batch_size, max_length, include_embeddings,
                          progress=progress, desc="MEXA (target)")
    scores = [alignment_score(en[layer], xx[layer]) for layer in range(en.shape[0])]
    first = 0 if include_embeddings else 1
    return {"n_pairs": len(pairs), "layers": list(range(first, first + len(scores))), "scores": scores,
            "mean": float(np.mean(scores)), "max": float(np.max(scores)),
            "best_layer": first + int(np.argmax(scores))}


def plot_mexa(results: dict[str, dict], path, title: str = "MEXA alignment per layer") -> None:
    """One line per model (label → ``mexa`` result) into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, res in results.items():
        ax.plot(res["layers"], res["scores"], marker="o", ms=3, label=f"{label} (mean {res['mean']:.2f})")
    ax.set_xlabel("layer")
    ax.set_ylabel("alignment score")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
