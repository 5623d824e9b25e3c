"""vmap: one independence rule for every combination of batched operands (issue 12 item 3).

A batch element is a distinct set of neurons. With an unbatched key, element ``b`` gets
the draws of row ``b`` of the stacked target (counters ``b * N + i``); with a batched key,
element ``b`` is exactly the unbatched call with ``keys[b]``. The expected values come from
an independent numpy oracle (threefry words of the counter, exact table search).
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from bits import assert_same_bits
from jax.extend.random import threefry_2x32

from brainpy_poisson_plugin import binomial_table, poisson_add

IMPLS = ["reference", "auto"]
B, N, NUM = 4, 600, 200
# Rates and weights exactly representable in float32, so a traced (float32) p builds the
# same table as the Python float.
RATES = [0.0625, 0.125, 0.03125, 0.25]
WEIGHTS = [0.5, -1.0, 2.0, 0.25]


def oracle_counts(key_data, counters: np.ndarray, n: int, p: float) -> np.ndarray:
    """Counts of the given global counters under ``key_data`` (u32[2]), by the contract."""
    c = jnp.asarray(counters.astype(np.uint32))
    out = np.asarray(threefry_2x32(jnp.asarray(key_data), jnp.concatenate([jnp.zeros_like(c), c])))
    size = counters.size
    u = (out[:size].astype(np.uint64) << np.uint64(32)) | out[size:].astype(np.uint64)
    return binomial_table(n, p).sample_from_words(u)


def expected(targets, key_datas, rates, weights, key_batched: bool) -> np.ndarray:
    rows = []
    for b in range(B):
        counters = np.arange(N) if key_batched else b * N + np.arange(N)
        counts = oracle_counts(key_datas[b], counters, NUM, rates[b]).astype(np.float32)
        inc = np.float32(weights[b]) * counts
        t = targets[b]
        rows.append(np.where(inc == 0, t, t + inc))
    return np.stack(rows)


COMBOS = [c for c in itertools.product([False, True], repeat=4) if any(c)]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("batched", COMBOS, ids=lambda c: "".join("TKPW"[i] if b else "_" for i, b in enumerate(c)))
def test_every_in_axes_combination_follows_the_rule(impl, batched):
    t_b, k_b, p_b, w_b = batched
    base = jax.random.normal(jax.random.key(1), (B, N), jnp.float32)
    key = jax.random.key(77)
    keys = jax.random.split(jax.random.key(78), B)
    targets = base if t_b else base[0]
    key_arg = keys if k_b else key
    rates = jnp.asarray(RATES, jnp.float32) if p_b else RATES[1]
    weights = jnp.asarray(WEIGHTS, jnp.float32) if w_b else WEIGHTS[0]
    in_axes = tuple(0 if b else None for b in batched)
    out = jax.vmap(lambda t, k, p, w: poisson_add(t, k, NUM, p, w, impl=impl), in_axes=in_axes)(
        targets, key_arg, rates, weights
    )
    want = expected(
        np.asarray(base) if t_b else np.broadcast_to(np.asarray(base[0]), (B, N)),
        [jax.random.key_data(keys[b]) if k_b else jax.random.key_data(key) for b in range(B)],
        RATES if p_b else [RATES[1]] * B,
        WEIGHTS if w_b else [WEIGHTS[0]] * B,
        key_batched=k_b,
    )
    assert_same_bits(out, want.astype(np.float32))
    # Independence made visible: with equal rates and weights and an unbatched key, the
    # rows still differ (they are different neurons).
    if not k_b and not p_b and not w_b:
        rows = np.asarray(out) - np.asarray(targets if t_b else np.broadcast_to(base[0], (B, N)))
        assert all(np.mean(rows[i] != rows[i + 1]) > 0.1 for i in range(B - 1))


@pytest.mark.parametrize("impl", IMPLS)
def test_equal_weights_batched_still_give_independent_rows(impl):
    """The reported bug: vmap over (target, weights) with equal weights gave identical rows."""
    T = jnp.zeros((B, N), jnp.float32)
    ws = jnp.ones((B,), jnp.float32)
    key = jax.random.key(3)
    out = np.asarray(jax.vmap(lambda t, w: poisson_add(t, key, 100, 0.05, w, impl=impl))(T, ws))
    only_target = np.asarray(jax.vmap(lambda t: poisson_add(t, key, 100, 0.05, 1.0, impl=impl))(T))
    assert_same_bits(out, only_target)
    assert all(not np.array_equal(out[i], out[i + 1]) for i in range(B - 1))


@pytest.mark.parametrize("impl", IMPLS)
def test_nested_vmap_and_other_axis_follow_the_stacked_array(impl):
    key = jax.random.key(9)
    x = jnp.zeros((3, 2, 50), jnp.float32)

    def f(t):
        return poisson_add(t, key, 1000, 0.01, 1.0, impl=impl)

    whole = np.asarray(f(x))
    assert_same_bits(jax.vmap(jax.vmap(f))(x), whole)
    # Batch axis 1: element b is row b of the array stacked on axis 0 (moveaxis).
    xt = jnp.zeros((50, 4), jnp.float32)
    out = jax.vmap(f, in_axes=1, out_axes=1)(xt)
    assert_same_bits(out, np.asarray(f(jnp.zeros((4, 50), jnp.float32))).T)
    # Nested with a batched weight inside: still the rows of the stacked (3, 2, 50) array.
    ws = jnp.ones((2,), jnp.float32)
    inner = jax.vmap(lambda t, w: poisson_add(t, key, 1000, 0.01, w, impl=impl))
    assert_same_bits(jax.vmap(lambda t: inner(t, ws))(x), whole)


def test_batched_key_with_equal_keys_gives_equal_draws():
    """With a batched key the user chose the keys: equal keys, equal draws."""
    key = jax.random.key(5)
    keys = jnp.stack([jax.random.key_data(key)] * 3)
    out = np.asarray(jax.vmap(lambda k: poisson_add(jnp.zeros(100), k, 100, 0.1, 1.0))(keys))
    single = np.asarray(poisson_add(jnp.zeros(100), key, 100, 0.1, 1.0))
    for row in out:
        assert_same_bits(row, single)
