"""Hidden-state view: middle-layer sentence vectors of parallel sentences, projected to 2-D (PCA, or
t-SNE when asked) per model, one panel per model, English and target sentences in two colours with a
faint line joining each pair. Aligned models show the two clouds overlapping."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError
from .mexa import sentence_vectors


def project(vectors: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """(n, d) → (n, 2) with scikit-learn's PCA or t-SNE."""
    from ..optional import require

    require("sklearn", "pip install scikit-learn", "the hidden-state view")
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(vectors)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30, max(2, (len(vectors) - 1) // 3)))
        return TSNE(n_components=2, random_state=seed, perplexity=perplexity, init="pca").fit_transform(vectors)
    raise ConfigError("--method", method, "use 'pca' or 'tsne'")


def middle_layer_points(model, tokenizer, pairs: Sequence[tuple[str, str]], layer: int | None = None,
                        method: str = "pca", seed: int = 0, batch_size: int = 16, progress: bool = True) -> dict:
    """2-D points of the English and target sentences at ``layer`` (default: the middle block)."""
    n_layers = model.config.num_hidden_layers
    layer = n_layers // 2 if layer is None else layer
    if not 1 <= layer <= n_layers:
        raise ConfigError("--layer", layer, f"must be in 1..{n_layers} (transformer block outputs)")
    texts = [p[0] for p in pairs] + [p[1] for p in pairs]
    vecs = sentence_vectors(model, tokenizer, texts, batch_size, layers=[layer], progress=progress,
                            desc=f"hidden states (layer {layer})")[0]
    pts = project(vecs, method, seed)
    return {"layer": layer, "method": method, "en": pts[:len(pairs)], "xx": pts[len(pairs):]}


def plot_points(views: dict[str, dict], path, lang: str = "xx") -> None:
    """One panel per model label → PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(views), figsize=(4.5 * len(views), 4.2), squeeze=False)
    for ax, (label, v) in zip(axes[0], views.items(), strict=True):
        for a, b in zip(v["en"], v["xx"], strict=True):
            ax.plot([a[0], b[0]], [a[1], b[1]], color="grey", alpha=0.15, lw=0.6)
        ax.scatter(v["en"][:, 0], v["en"][:, 1], s=10, label="en")
        ax.scatter(v["xx"][:, 0], v["xx"][:, 1], s=10, label=lang)
        ax.set_title(f"{label}\nlayer {v['layer']}, {v['method'].upper()}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
