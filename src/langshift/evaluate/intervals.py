"""95% intervals for the evaluation's numbers: Wilson for proportions (LPR, accuracy), a percentile
bootstrap over items for means and ratios (bits per byte over documents, MEXA over pairs) and for the
paired difference of two models on the same items, and the item count a proportion needs for a given
half-width.

Written here rather than taken from scipy/statsmodels: Wilson is three lines, statsmodels is not a
dependency, and scipy.stats.bootstrap does not resample a ratio of sums with paired weights.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError

Z95 = 1.959963984540054


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``successes / n`` (good at small n and near 0 or 1)."""
    if n < 1:
        raise ConfigError("n", n, "a proportion needs at least one item")
    if not 0 <= successes <= n:
        raise ConfigError("successes", successes, f"must lie between 0 and n={n}")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def items_for_half_width(p: float, half_width: float, z: float = Z95) -> int:
    """Items a proportion near ``p`` needs for a 95% interval of ±``half_width`` (normal approximation)."""
    if not 0 < half_width < 1:
        raise ConfigError("half_width", half_width, "give a half-width between 0 and 1, e.g. 0.05")
    return math.ceil(z * z * p * (1 - p) / half_width ** 2)


def bootstrap_ratio(numerators: Sequence[float], denominators: Sequence[float] | None = None, iters: int = 2000,
                    seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of ``sum(num) / sum(den)`` resampling items (the mean when no ``den``)."""
    num = np.asarray(numerators, dtype=np.float64)
    den = np.ones_like(num) if denominators is None else np.asarray(denominators, dtype=np.float64)
    if num.ndim != 1 or num.shape != den.shape or len(num) < 2:
        raise ConfigError("numerators", len(num), "need at least 2 items (and as many denominators)")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(num), size=(iters, len(num)))
    stats = num[idx].sum(axis=1) / den[idx].sum(axis=1)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(stats, [tail, 100 - tail])
    return float(lo), float(hi)


def paired_difference(a: Sequence[float], b: Sequence[float], iters: int = 10000, seed: int = 0,
                      level: float = 0.95) -> tuple[float, float, float]:
    """mean(a) − mean(b) over the same items, with a percentile bootstrap interval that resamples items.

    Two models scored on the same prompts are not independent samples: their per-item scores (1/0 for a
    pass, or any number) are compared item by item, so the interval is narrower than the two rows'
    Wilson intervals suggest when the models agree on most items."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape or len(x) < 2:
        raise ConfigError("a", len(x), f"need at least 2 items scored for both models (b has {len(y)})")
    d = x - y
    return (float(d.mean()), *bootstrap_ratio(d, iters=iters, seed=seed, level=level))
