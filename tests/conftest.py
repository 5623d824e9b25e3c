"""Shared test helpers: exact binomial goodness of fit."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats


def chi_square_gof(samples: np.ndarray, n: int, p: float, min_expected: float = 5.0) -> tuple[float, int]:
    """Chi-square test of integer ``samples`` against the exact Binomial(n, p) pmf.

    Bins are the support values; neighbouring bins are pooled (outward from the mode)
    until each holds at least ``min_expected`` expected counts, and everything beyond
    the observed range goes to the outermost bins. Returns ``(p_value, bins)``.
    """
    samples = np.asarray(samples).astype(np.int64).ravel()
    size = samples.size
    lo = max(0, int(samples.min()) - 50)
    hi = min(n, int(samples.max()) + 50)
    ks = np.arange(lo, hi + 1)
    pmf = stats.binom.pmf(ks, n, p)
    pmf[0] += stats.binom.cdf(lo - 1, n, p) if lo > 0 else 0.0
    pmf[-1] += stats.binom.sf(hi, n, p)
    observed = np.bincount(samples - lo, minlength=ks.size).astype(float)
    expected = pmf * size
    # Pool: accumulate from the left until the expectation is large enough, same from right.
    edges: list[tuple[float, float]] = []
    acc_e = acc_o = 0.0
    for e, o in zip(expected, observed):
        acc_e += e
        acc_o += o
        if acc_e >= min_expected:
            edges.append((acc_e, acc_o))
            acc_e = acc_o = 0.0
    if edges:
        last_e, last_o = edges.pop()
        edges.append((last_e + acc_e, last_o + acc_o))
    else:
        edges.append((acc_e, acc_o))
    e = np.array([x[0] for x in edges])
    o = np.array([x[1] for x in edges])
    if len(e) < 2:
        return 1.0, len(e)
    chi2 = float(np.sum((o - e) ** 2 / e))
    return float(stats.chi2.sf(chi2, len(e) - 1)), len(e)


@pytest.fixture
def gof():
    """The chi-square goodness-of-fit helper."""
    return chi_square_gof
