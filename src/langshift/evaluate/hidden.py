"""Hidden-state view: middle-layer sentence vectors of parallel sentences, projected to 2-D (PCA, or
t-SNE when asked) per model, one panel per model, English and target sentences in two colours with a
faint line joining each pair. Aligned models show the two clouds overlapping."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np

from ..config import Result, StageConfig, check_range, opt
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


@dataclass
class HiddenConfig(StageConfig):
    INPUTS: ClassVar = ("model", "pairs")
    model: list[str] = opt(help="one or more models")
    out: str = opt(help="PNG file to write")
    pairs: str | None = opt(None, "JSONL with 'en' and 'xx' per line (from `eval build --task parallel`); "
                                  "default: Bible verses")
    n: int = opt(100, "number of pairs")
    target_lang: str | None = opt(None, "target language of the built-in Bible pairs (and the plot's legend)")
    source_lang: str = opt("en", "the other language of the built-in Bible pairs")
    seed: int = opt(0, "seed of the Bible pairs and the projection")
    layer: int | None = opt(None, "block output to show (default: the middle)")
    method: Literal["pca", "tsne"] = opt("pca", "projection to 2-D")

    def validate(self) -> None:
        if isinstance(self.model, str):
            self.model = [self.model]
        check_range("--n", self.n, 2)


@dataclass
class HiddenResult(Result):
    models: list[str] = field(default_factory=list)
    pairs: int = 0
    method: str = "pca"


def run_hidden(cfg: HiddenConfig) -> HiddenResult:
    """The hidden-state view of every model, one panel each, into the PNG ``cfg.out``."""
    from ..files import check_out_file
    from ..models import load_model, load_tokenizer
    from .tasks import read_pairs

    check_out_file(cfg.out, True, "--out", {"--model": cfg.model, "--pairs": cfg.pairs})
    pairs = read_pairs(cfg.pairs, cfg.n, cfg.seed, cfg.source_lang, cfg.target_lang)
    views = {name: middle_layer_points(load_model(name), load_tokenizer(name, param="--model"), pairs, cfg.layer,
                                       cfg.method, cfg.seed) for name in cfg.model}
    plot_points(views, cfg.out, cfg.target_lang or "xx")
    return HiddenResult(out=cfg.out, models=list(cfg.model), pairs=len(pairs), method=cfg.method)
