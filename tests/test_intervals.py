"""95% intervals of the evaluation: Wilson for proportions, bootstrap for ratios and means, sizing."""

from __future__ import annotations

import numpy as np
import pytest

from langshift.errors import ConfigError
from langshift.evaluate.intervals import bootstrap_ratio, items_for_half_width, paired_difference, wilson


def test_wilson_matches_the_textbook_values():
    # Wilson (1927) / Newcombe (1998) table: 81/263 → [0.2553, 0.3662]; 0/10 → [0, 0.2775]
    assert wilson(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    lo, hi = wilson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    assert wilson(10, 10)[1] == pytest.approx(1.0) and wilson(10, 10)[0] == pytest.approx(0.7225, abs=1e-4)


def test_wilson_narrows_with_more_items_and_rejects_bad_counts():
    assert np.diff(wilson(32, 64)) < np.diff(wilson(4, 8))
    with pytest.raises(ConfigError, match="successes"):
        wilson(9, 8)
    with pytest.raises(ConfigError, match="n"):
        wilson(0, 0)


def test_items_for_half_width_gives_that_half_width():
    n = items_for_half_width(0.45, 0.05)
    assert 370 < n < 400                    # 1.96² · 0.45 · 0.55 / 0.05² ≈ 381
    lo, hi = wilson(round(0.45 * n), n)
    assert (hi - lo) / 2 == pytest.approx(0.05, abs=0.003)
    with pytest.raises(ConfigError, match="half_width"):
        items_for_half_width(0.5, 0)


def test_bootstrap_ratio_covers_the_ratio_of_sums_and_is_reproducible():
    rng = np.random.default_rng(1)
    nbytes = rng.integers(50, 200, size=100).astype(float)
    bits = nbytes * rng.normal(2.5, 0.3, size=100)
    lo, hi = bootstrap_ratio(bits, nbytes)
    assert lo < bits.sum() / nbytes.sum() < hi and hi - lo < 0.2
    assert bootstrap_ratio(bits, nbytes) == (lo, hi)                       # seeded
    assert bootstrap_ratio([1.0, 1.0, 1.0]) == (1.0, 1.0)                  # no spread, no width
    with pytest.raises(ConfigError, match="numerators"):
        bootstrap_ratio([1.0])


def test_paired_difference_is_narrower_than_one_row_when_models_agree_on_most_items():
    rng = np.random.default_rng(2)
    a = (rng.random(96) < 0.85).astype(float)
    b = a.copy()
    b[:6] = 1 - b[:6]                        # the models disagree on 6 of 96 prompts
    diff, lo, hi = paired_difference(a, b)
    assert diff == pytest.approx(a.mean() - b.mean())
    assert lo <= diff <= hi
    row_lo, row_hi = wilson(a.sum(), len(a))
    assert hi - lo < row_hi - row_lo         # pairing drops the items both pass or both fail
    assert paired_difference(a, a) == (0.0, 0.0, 0.0)
    assert paired_difference(a, b) == (diff, lo, hi)                        # seeded
    with pytest.raises(ConfigError, match="b has 3"):
        paired_difference(a[:4], b[:3])
