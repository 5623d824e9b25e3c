"""The exact binomial tables: monotone, exact to their fixed-point resolution, trimmed tails."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from brainpy_poisson_plugin.sampling.tables import (
    MAX_NUM_INPUT,
    binomial_pmf,
    binomial_table,
    max_table_length,
)

NS = [1, 2, 37, 1000, 10**5, 10**7, MAX_NUM_INPUT]
PS = [1e-9, 1e-6, 1e-3, 0.02, 0.5, 0.97, 1.0 - 1e-9, 1.0]
RESOLUTION = 2.0**-64


def exact_pmf(k: int, n: int, p: float) -> float:
    """Binomial pmf in 50-digit arithmetic (p taken exactly as the float it is)."""
    if p in (0.0, 1.0):
        return float(k == (0 if p == 0.0 else n))
    with mpmath.workdps(50):
        mp_p = mpmath.mpf(p)
        logv = (
            mpmath.loggamma(n + 1)
            - mpmath.loggamma(k + 1)
            - mpmath.loggamma(n - k + 1)
            + k * mpmath.log(mp_p)
            + (n - k) * mpmath.log1p(-mp_p)
        )
        return float(mpmath.exp(logv))


def exact_tail(k: int, n: int, p: float, direction: int) -> float:
    """P(X <= k) (direction -1) or P(X >= k) (direction +1), summed term by term with
    the exact pmf ratio until the terms no longer matter."""
    with mpmath.workdps(50):
        mp_p = mpmath.mpf(p)
        ratio_q_p = (1 - mp_p) / mp_p
        term = mpmath.mpf(exact_pmf(k, n, p)) if 0 <= k <= n else mpmath.mpf(0)
        total = term
        j = k
        while term > total * mpmath.mpf(10) ** -30 and 0 < j < n:
            if direction < 0:
                term = term * j / (n - j + 1) * ratio_q_p
                j -= 1
            else:
                term = term * (n - j) / (j + 1) / ratio_q_p
                j += 1
            total += term
        return float(total)


@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("p", PS)
def test_thresholds_strictly_increasing_and_bounded(n, p):
    t = binomial_table(n, p)
    th = t.thresholds
    assert th.dtype == np.uint64
    assert np.all(th[1:] > th[:-1])
    assert t.size <= max_table_length(n)
    assert 0 <= t.k0 and t.k0 + t.size <= n
    if t.size:
        assert int(th[0]) > 0


@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("p", PS)
def test_implied_pmf_matches_exact_pmf(n, p):
    """Each realised probability equals the exact pmf to 1e-12 relative, up to the
    table's own fixed-point resolution (one threshold step is 2**-64 wide, so two
    rounded thresholds bound the difference by 2 * 2**-64 absolute)."""
    t = binomial_table(n, p)
    implied = t.implied_pmf()
    ks = np.arange(t.k0, t.k0 + t.size + 1)
    # Check every value for small tables, a spread of 200 values for large ones.
    idx = np.unique(np.linspace(0, ks.size - 1, min(ks.size, 200)).round().astype(int))
    for i in idx:
        k = int(ks[i])
        exact = exact_pmf(k, n, p)
        if 0 < p < 1 and i == 0:  # the lowest value also carries the trimmed lower tail
            exact = exact_tail(k, n, p, -1)
        if 0 < p < 1 and i == ks.size - 1:  # the highest, the trimmed upper tail
            exact = exact_tail(k, n, p, +1)
        if exact < 1e-300:
            continue
        tol = 1e-12 * exact + 2 * RESOLUTION
        assert abs(implied[i] - exact) <= tol, (k, implied[i], exact)


@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("p", PS)
def test_trimmed_mass_is_negligible(n, p):
    """Values that can never be drawn carry almost no mass.

    Strictly increasing 64-bit thresholds cannot represent a value whose own mass is
    below 2**-64, so each tail is cut where the pmf falls below one threshold step; the
    mass beyond is about ``pmf * sigma / z`` with ``z ~ 9`` standard deviations there,
    i.e. ``~ sigma / 9`` steps per tail. That is below 2**-60 up to n ~ 10**4 and stays
    under ``sigma / 4`` steps for every n (2**-52.6 for n = 2**31 - 1, p = 0.5)."""
    t = binomial_table(n, p)
    if p in (0.0, 1.0):
        return
    below = exact_tail(t.k0 - 1, n, p, -1) if t.k0 > 0 else 0.0
    top = t.k0 + t.size
    above = exact_tail(top + 1, n, p, +1) if top < n else 0.0
    sigma = math.sqrt(n * p * (1 - p))
    assert below + above < 2.0**-60 + sigma / 4 * RESOLUTION
    if n <= 10**4:
        assert below + above < 2.0**-60


def test_degenerate_probabilities():
    assert binomial_table(10, 0.0).k0 == 0 and binomial_table(10, 0.0).size == 0
    assert binomial_table(10, 1.0).k0 == 10 and binomial_table(10, 1.0).size == 0


def test_pmf_against_high_precision():
    for n, p in [(10**7, 0.5), (MAX_NUM_INPUT, 0.5), (10**5, 1e-3), (37, 0.97)]:
        mean = int(n * p)
        ks = np.array([mean - 3 * int(math.sqrt(n * p * (1 - p))), mean, mean + 2])
        ks = ks[(ks >= 0) & (ks <= n)]
        ours = binomial_pmf(ks, n, p)
        for k, v in zip(ks, ours):
            assert v == pytest.approx(exact_pmf(int(k), n, p), rel=1e-13)


def test_tables_are_cached():
    assert binomial_table(1000, 0.001) is binomial_table(1000, 0.001)


def test_words_round_trip():
    t = binomial_table(10**5, 0.3)
    w = t.words().astype(np.uint64)
    assert np.array_equal((w[:, 0] << np.uint64(32)) | w[:, 1], t.thresholds)


@pytest.mark.parametrize(
    "args, exc, name",
    [
        ((0, 0.5), ValueError, "num_input"),
        ((2**31, 0.5), ValueError, "num_input"),
        ((1.5, 0.5), TypeError, "num_input"),
        ((True, 0.5), TypeError, "num_input"),
        ((10, -0.1), ValueError, "p"),
        ((10, 1.5), ValueError, "p"),
        ((10, float("nan")), ValueError, "p"),
        ((10, "x"), TypeError, "p"),
    ],
)
def test_bad_arguments(args, exc, name):
    with pytest.raises(exc, match=rf"\b{name}\b"):
        binomial_table(*args)


# ---------------------------------------------------------------------------------------
# One construction everywhere: the pure-Python mirror, the native builder, and the table
# built inside a compiled program for a traced p.
# ---------------------------------------------------------------------------------------

GRID_PS = [0.0, 1e-300, 1e-30, 1e-9, 1e-6, 1e-3, 0.02, 0.1, 1 / 3, 0.5, 0.7, 0.97, 1 - 1e-6, 1.0 - 1e-9, 1.0]


def _same_table(a, b) -> bool:
    return a.k0 == b.k0 and a.thresholds.dtype == b.thresholds.dtype and np.array_equal(a.thresholds, b.thresholds)


@pytest.mark.slow  # about a minute at n = 2**31 - 1 (the Python construction)
@pytest.mark.parametrize("n", NS)
def test_python_and_native_constructions_identical(n):
    """The pure-Python construction and the native one (bpp/binomial_table.h, the code the
    CUDA kernel runs too) give identical thresholds and k0, threshold for threshold."""
    from brainpy_poisson_plugin.sampling.tables import (
        build_table_native,
        build_table_python,
    )

    if build_table_native(1, 0.5) is None:
        pytest.skip("native CPU library not built")
    for p in GRID_PS:
        native = build_table_native(n, p)
        python = build_table_python(n, p)
        assert _same_table(native, python), (n, p, native.k0, python.k0, native.size, python.size)


def test_binomial_table_is_the_deterministic_construction():
    from brainpy_poisson_plugin.sampling.tables import build_table_python

    for n, p in [(1000, 0.001), (37, 0.97), (10**5, 0.3)]:
        assert _same_table(binomial_table(n, p), build_table_python(n, p))


def test_tiny_p_tables_are_empty_at_zero():
    """Below 2**-200 all mass (up to 2**-169) is at 0; p = 1 - 2**-53 is an ordinary table."""
    t = binomial_table(MAX_NUM_INPUT, 1e-300)
    assert (t.k0, t.size) == (0, 0)
    top = binomial_table(1000, 1.0 - 2.0**-53)
    assert top.k0 + top.size == 1000 and top.size >= 1
