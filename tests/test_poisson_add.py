"""poisson_add: the contract, edge cases, transformations and argument checking."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.extend.random import threefry_2x32

from brainpy_poisson_plugin import binomial_table, poisson_add

IMPLS = ["reference", "auto"]


def bits(x) -> np.ndarray:
    a = np.asarray(x)
    return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def oracle_counts(key, size: int, n: int, p: float) -> np.ndarray:
    """Counts by the contract, in numpy: threefry words of the flat index, table search."""
    kd = jax.random.key_data(key)
    idx = np.arange(size, dtype=np.uint32)
    out = np.asarray(threefry_2x32(kd, jnp.concatenate([jnp.zeros(size, jnp.uint32), jnp.asarray(idx)])))
    u = (out[:size].astype(np.uint64) << np.uint64(32)) | out[size:].astype(np.uint64)
    return binomial_table(n, p).sample_from_words(u)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("n, p", [(1000, 0.001), (37, 0.5), (10**7, 0.5), (5, 0.97)])
def test_matches_contract_oracle(impl, n, p):
    key = jax.random.key(42)
    x = jnp.zeros((5003,), jnp.float32)
    out = poisson_add(x, key, n, p, 1.0, impl=impl)
    expected = oracle_counts(key, x.size, n, p).astype(np.float32)
    assert np.array_equal(np.asarray(out), expected)


@pytest.mark.parametrize("impl", IMPLS)
def test_adds_weight_times_count_in_target_dtype(impl):
    key = jax.random.key(1)
    x = jax.random.normal(jax.random.key(2), (1000,), jnp.float32)
    out = poisson_add(x, key, 100, 0.05, -0.37, impl=impl)
    counts = oracle_counts(key, 1000, 100, 0.05)
    inc = np.float32(-0.37) * counts.astype(np.float32)
    expected = np.where(inc == 0, np.asarray(x), np.asarray(x) + inc)
    assert out.dtype == jnp.float32
    assert np.array_equal(bits(out), bits(expected))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("p, weight", [(0.0, 1.0), (0.3, 0.0), (0.0, 0.0)])
def test_zero_rate_or_weight_leaves_bits_unchanged(impl, p, weight):
    x = jnp.array([-0.0, 0.0, 1.5, -2.25, jnp.inf, jnp.nan, 1e-40], jnp.float32)
    out = poisson_add(x, jax.random.key(0), 10, p, weight, impl=impl)
    assert np.array_equal(bits(out), bits(x))


@pytest.mark.parametrize("impl", IMPLS)
def test_probability_one_adds_weight_times_num_input(impl):
    x = jnp.arange(6, dtype=jnp.float32)
    out = poisson_add(x, jax.random.key(0), 123, 1.0, 0.5, impl=impl)
    assert np.array_equal(np.asarray(out), np.asarray(x) + np.float32(61.5))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32])
def test_half_precision_accumulates_in_float32(impl, dtype):
    key = jax.random.key(9)
    x = jnp.full((777,), 3.0, dtype)
    out = poisson_add(x, key, 1000, 0.01, 0.1, impl=impl)
    counts = oracle_counts(key, 777, 1000, 0.01)
    inc = np.float32(0.1) * counts.astype(np.float32)
    expected = jnp.where(inc == 0, x, (jnp.float32(3.0) + inc).astype(dtype))
    assert out.dtype == dtype
    assert np.array_equal(bits(out), bits(expected))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape", [(), (0,), (0, 3), (1,), (7, 13), (2, 3, 5)])
def test_any_shape(impl, shape):
    key = jax.random.key(3)
    x = jnp.zeros(shape, jnp.float32)
    out = poisson_add(x, key, 1000, 0.02, 1.0, impl=impl)
    assert out.shape == shape and out.dtype == x.dtype
    flat = oracle_counts(key, int(np.prod(shape)), 1000, 0.02).astype(np.float32)
    assert np.array_equal(np.asarray(out).ravel(), flat)


@pytest.mark.parametrize("impl", IMPLS)
def test_jit_and_traced_rate_and_weight(impl):
    key = jax.random.key(4)
    x = jnp.zeros((2000,), jnp.float32)
    eager = poisson_add(x, key, 1000, 0.002, 0.5, impl=impl)
    jitted = jax.jit(lambda x, k, p, w: poisson_add(x, k, 1000, p, w, impl=impl))(x, key, 0.002, 0.5)
    assert np.array_equal(bits(eager), bits(jitted))
    # A rate that changes over time: the table is built at run time.
    rates = jnp.array([0.0, 0.002, 1.0])
    outs = jax.jit(jax.vmap(lambda p: poisson_add(x, key, 1000, p, 0.5, impl=impl)))(rates)
    assert np.array_equal(np.asarray(outs[0]), np.asarray(x))
    # vmap rule: with an unbatched key, element 1 is row 1 of the stacked target.
    stacked = poisson_add(jnp.stack([x] * 3), key, 1000, 0.002, 0.5, impl=impl)
    assert np.array_equal(bits(outs[1]), bits(stacked[1]))
    assert np.all(np.asarray(outs[2]) == 500.0)


def test_traced_rate_out_of_range_is_visible_not_silent():
    x = jnp.zeros((10,), jnp.float32)
    out = jax.jit(lambda p: poisson_add(x, jax.random.key(0), 10, p, 1.0))(1.5)
    assert np.all(np.isnan(np.asarray(out)))


@pytest.mark.parametrize("impl", IMPLS)
def test_vmap_draws_independently_per_batch_element(impl):
    key = jax.random.key(5)
    xb = jnp.zeros((8, 3000), jnp.float32)
    f = lambda x: poisson_add(x, key, 1000, 0.01, 1.0, impl=impl)  # noqa: E731
    out = jax.vmap(f)(xb)
    # Unbatched key: the batch is one bigger array, so rows get distinct counters.
    assert np.array_equal(np.asarray(out), np.asarray(f(xb)))
    rows = np.asarray(out)
    assert all(np.mean(rows[i] != rows[i + 1]) > 0.3 for i in range(7))
    # vmap over the batch axis 1 too.
    out_t = jax.vmap(f, in_axes=1, out_axes=1)(xb.T.copy().T)
    assert out_t.shape == xb.shape
    # Batched keys: each element is exactly its own call.
    keys = jax.random.split(key, 8)
    outk = jax.vmap(lambda x, k: poisson_add(x, k, 1000, 0.01, 1.0, impl=impl))(xb, keys)
    for i in (0, 5):
        assert np.array_equal(np.asarray(outk[i]), np.asarray(poisson_add(xb[i], keys[i], 1000, 0.01, 1.0, impl=impl)))
    # Batched weights, unbatched key: element b is row b of the stacked target (the full
    # rule over every in_axes combination is in test_vmap_rule.py).
    ws = jnp.linspace(0.0, 1.0, 8)
    outw = jax.vmap(lambda w: poisson_add(xb[0], key, 1000, 0.01, w, impl=impl))(ws)
    assert np.array_equal(np.asarray(outw[0]), np.asarray(xb[0]))
    assert np.array_equal(np.asarray(outw[7]), np.asarray(f(xb))[7])


@pytest.mark.parametrize("impl", IMPLS)
def test_gradients(impl):
    key = jax.random.key(6)
    x = jax.random.normal(jax.random.key(7), (500,), jnp.float32)
    counts = np.asarray(poisson_add(jnp.zeros_like(x), key, 1000, 0.01, 1.0, impl=impl))

    def loss(x, w):
        return jnp.sum(jnp.sin(poisson_add(x, key, 1000, 0.01, w, impl=impl)))

    gx, gw = jax.grad(loss, argnums=(0, 1))(x, 0.7)
    y = np.asarray(poisson_add(x, key, 1000, 0.01, 0.7, impl=impl))
    np.testing.assert_allclose(np.asarray(gx), np.cos(y), rtol=1e-6)
    np.testing.assert_allclose(float(gw), float(np.sum(np.cos(y) * counts)), rtol=1e-5)
    # Forward mode agrees with reverse mode.
    _, tangent = jax.jvp(lambda w: poisson_add(x, key, 1000, 0.01, w, impl=impl), (0.7,), (1.0,))
    np.testing.assert_array_equal(np.asarray(tangent), counts)
    _, tangent_x = jax.jvp(lambda t: poisson_add(t, key, 1000, 0.01, 0.7, impl=impl), (x,), (jnp.ones_like(x),))
    np.testing.assert_array_equal(np.asarray(tangent_x), np.ones(500, np.float32))


def test_reference_and_auto_are_bit_identical_under_grad():
    key = jax.random.key(8)
    x = jnp.linspace(-1, 1, 4096, dtype=jnp.float32)
    grads = [jax.grad(lambda w, i=impl: jnp.sum(poisson_add(x, key, 100, 0.1, w, impl=i) ** 2))(0.3) for impl in IMPLS]
    assert bits(grads[0]) == bits(grads[1])


BAD = [
    (dict(target=jnp.zeros(3, jnp.int32)), TypeError, "target"),
    (dict(target=jnp.zeros(3, bool)), TypeError, "target"),
    (dict(target=[0.0, 1.0]), TypeError, "target"),
    (dict(num_input=0), ValueError, "num_input"),
    (dict(num_input=2.5), TypeError, "num_input"),
    (dict(num_input=2**31), ValueError, "num_input"),
    (dict(p=-0.1), ValueError, "p"),
    (dict(p=1.01), ValueError, "p"),
    (dict(p=float("nan")), ValueError, "p"),
    (dict(p=jnp.zeros(3)), ValueError, "p"),
    (dict(weight=float("nan")), ValueError, "weight"),
    (dict(weight=float("inf")), ValueError, "weight"),
    (dict(weight=jnp.ones(2)), ValueError, "weight"),
    (dict(key=jnp.zeros(3, jnp.uint32)), ValueError, "key"),
    (dict(key=7), TypeError, "key"),
    (dict(impl="gpu"), ValueError, "impl"),
]


@pytest.mark.parametrize("bad, exc, name", BAD, ids=[f"{b[2]}-{i}" for i, b in enumerate(BAD)])
def test_bad_input_names_the_argument(bad, exc, name):
    args = dict(target=jnp.zeros(4, jnp.float32), key=jax.random.key(0), num_input=10, p=0.1, weight=1.0)
    args.update(bad)
    with pytest.raises(exc, match=rf"\b{name}\b"):
        poisson_add(**args)


def test_raw_uint32_keys_equal_typed_keys():
    x = jnp.zeros(100, jnp.float32)
    typed = poisson_add(x, jax.random.key(11), 50, 0.1, 1.0)
    raw = poisson_add(x, jax.random.PRNGKey(11), 50, 0.1, 1.0)
    assert np.array_equal(np.asarray(typed), np.asarray(raw))
