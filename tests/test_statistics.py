"""poisson_add draws exact binomial counts: goodness of fit and independence.

Fixed seeds, 400,000 draws per grid cell, chi-square against the exact binomial pmf
(scipy.stats.binom, independent of the package's own pmf), bins pooled to an expected
count of at least 5. For p so small that pooling leaves a single bin, the number of
non-zero draws is tested exactly (binomial test) instead.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from brainpy_poisson_plugin import poisson_add

NS = [1, 2, 37, 1000, 10**5, 10**7]
PS = [1e-6, 1e-3, 0.02, 0.5, 0.97, 1.0]
SAMPLES = 400_000
ALPHA = 1e-4  # per-cell significance; the fixed seeds make each outcome deterministic


def draw(n: int, p: float, seed: int, size: int = SAMPLES) -> np.ndarray:
    out = poisson_add(jnp.zeros((size,), jnp.float32), jax.random.key(seed), n, p, 1.0)
    counts = np.asarray(out).astype(np.int64)
    assert np.array_equal(counts, np.asarray(out)), "counts must be exact integers"
    return counts


@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("p", PS)
def test_goodness_of_fit(n, p, gof):
    counts = draw(n, p, seed=1000 + NS.index(n) * 10 + PS.index(p))
    assert counts.min() >= 0 and counts.max() <= n
    if p == 1.0:
        assert np.all(counts == n)
        return
    p_value, bins = gof(counts, n, p)
    assert p_value > ALPHA, f"chi-square p-value {p_value:.3g} over {bins} bins"
    # Rare events: the number of non-zero draws must match 1 - pmf(0) exactly.
    nonzero = int(np.count_nonzero(counts))
    expected_rate = 1.0 - stats.binom.pmf(0, n, p)
    if 0 < expected_rate < 1:
        test = stats.binomtest(nonzero, counts.size, expected_rate)
        assert test.pvalue > ALPHA, f"non-zero fraction {nonzero / counts.size} vs {expected_rate}"
    # The first two moments, within 6 standard errors.
    mean, var = n * p, n * p * (1 - p)
    assert abs(counts.mean() - mean) < 6 * np.sqrt(var / counts.size) + 1e-12


_traced_draw = {}


def draw_traced(n: int, p: float, seed: int, size: int = SAMPLES) -> np.ndarray:
    """Like :func:`draw`, with ``p`` a traced argument: the table is built in the program."""
    if n not in _traced_draw:
        _traced_draw[n] = jax.jit(lambda x, k, p: poisson_add(x, k, n, p, 1.0))
    out = _traced_draw[n](jnp.zeros((size,), jnp.float32), jax.random.key(seed), jnp.float32(p))
    counts = np.asarray(out).astype(np.int64)
    assert np.array_equal(counts, np.asarray(out)), "counts must be exact integers"
    return counts


@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("p", PS)
def test_goodness_of_fit_traced_p(n, p, gof):
    """The same grid with p traced (the table built inside the compiled program), against
    the binomial of the float32 value the program sees."""
    p32 = float(np.float32(p))
    counts = draw_traced(n, p, seed=5000 + NS.index(n) * 10 + PS.index(p))
    assert counts.min() >= 0 and counts.max() <= n
    if p == 1.0:
        assert np.all(counts == n)
        return
    p_value, bins = gof(counts, n, p32)
    assert p_value > ALPHA, f"chi-square p-value {p_value:.3g} over {bins} bins"
    nonzero = int(np.count_nonzero(counts))
    expected_rate = 1.0 - stats.binom.pmf(0, n, p32)
    if 0 < expected_rate < 1:
        test = stats.binomtest(nonzero, counts.size, expected_rate)
        assert test.pvalue > ALPHA, f"non-zero fraction {nonzero / counts.size} vs {expected_rate}"


def test_vmap_over_16_rates_each_row_fits_its_own_binomial(gof):
    """A sweep: vmap over 16 rates from 1 to 40 Hz (dt = 0.1 ms, 1,000 inputs), one key
    per row; every row's counts fit the binomial of its own rate, and no other."""
    n, rows = 1000, 100_000
    rates = np.linspace(1.0, 40.0, 16, dtype=np.float32)
    ps = jnp.asarray(rates) * jnp.float32(0.1) / jnp.float32(1000.0)
    keys = jax.random.split(jax.random.key(77), 16)
    sweep = jax.jit(jax.vmap(lambda p, k: poisson_add(jnp.zeros((rows,), jnp.float32), k, n, p, 1.0)))
    counts = np.asarray(sweep(ps, keys)).astype(np.int64)
    ps_host = np.asarray(ps).astype(np.float64)
    for i in range(16):
        p_value, bins = gof(counts[i], n, float(ps_host[i]))
        assert p_value > ALPHA, f"row {i} ({rates[i]} Hz): chi-square p-value {p_value:.3g} over {bins} bins"
    # The rows really differ: each row's mean sits within 6 standard errors of its own
    # expectation, far from its neighbours' (rates 2.6 Hz apart).
    means = counts.mean(axis=1)
    se = np.sqrt(n * ps_host * (1 - ps_host) / rows)
    assert np.all(np.abs(means - n * ps_host) < 6 * se)
    assert np.all(np.diff(means) > 0)


def test_mean_and_variance_match_binomial_not_normal_approximation():
    """brainpy < 2.8 used the variance as the std of its normal approximation; we don't."""
    n, p = 10_000, 0.002
    counts = draw(n, p, seed=7)
    assert counts.var() == pytest.approx(n * p * (1 - p), rel=0.02)


def _corr_ok(a: np.ndarray, b: np.ndarray) -> bool:
    r = np.corrcoef(a, b)[0, 1]
    return abs(r) < 4.5 / np.sqrt(a.size)


@pytest.mark.parametrize("n, p", [(1000, 0.001), (1000, 0.02), (37, 0.5)])
def test_neighbouring_elements_independent(n, p):
    counts = draw(n, p, seed=11)
    assert _corr_ok(counts[:-1], counts[1:])
    assert _corr_ok(counts[:-2], counts[2:])
    grid = counts[: 400 * 1000].reshape(400, 1000)
    assert _corr_ok(grid[:-1].ravel(), grid[1:].ravel())


@pytest.mark.parametrize("n, p", [(1000, 0.001), (1000, 0.02)])
def test_consecutive_steps_independent(n, p):
    k1, k2 = jax.random.split(jax.random.key(3))
    zeros = jnp.zeros((SAMPLES,), jnp.float32)
    a = np.asarray(poisson_add(zeros, k1, n, p, 1.0))
    b = np.asarray(poisson_add(zeros, k2, n, p, 1.0))
    assert _corr_ok(a, b)


def test_same_key_same_bits_different_keys_differ():
    x = jax.random.normal(jax.random.key(0), (10_001,), jnp.float32)
    a = poisson_add(x, jax.random.key(5), 1000, 0.01, 0.3)
    b = poisson_add(x, jax.random.key(5), 1000, 0.01, 0.3)
    c = poisson_add(x, jax.random.key(6), 1000, 0.01, 0.3)
    assert np.array_equal(np.asarray(a).view(np.uint32), np.asarray(b).view(np.uint32))
    assert np.mean(np.asarray(a) != np.asarray(c)) > 0.5
