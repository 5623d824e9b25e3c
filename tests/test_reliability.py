"""Regression tests for the hostile tester's findings (issue 12: items 2, 4, 5, 7, 8, 11-14).

Each asserts the right result, not only the absence of a crash.
"""

from __future__ import annotations

import brainpy as bp
import brainpy.math as bm
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from bits import assert_same_bits
from jax.extend.random import threefry_2x32

from brainpy_poisson_plugin import PoissonInput, binomial_table, poisson_add, set_default_impl, using_impl
from brainpy_poisson_plugin.checks import check_key
from brainpy_poisson_plugin.host.compat import original_poisson_input_class

HOST = original_poisson_input_class()


def oracle_counts(key, size: int, n: int, p: float) -> np.ndarray:
    kd = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    idx = jnp.arange(size, dtype=jnp.uint32)
    out = np.asarray(threefry_2x32(kd, jnp.concatenate([jnp.zeros(size, jnp.uint32), idx])))
    u = (out[:size].astype(np.uint64) << np.uint64(32)) | out[size:].astype(np.uint64)
    return binomial_table(n, p).sample_from_words(u)


def step(node, i=0, dt=None):
    dt = bm.get_dt() if dt is None else dt
    bp.share.save(t=i * dt, i=i, dt=dt)
    node.update()
    return np.asarray(node.target_var.value)


# --- item 2: a weight finite in float64 but not in the target's dtype -------------------


@pytest.mark.parametrize(
    "weight, dtype", [(4e38, jnp.float32), (1e300, jnp.float32), (-1e5, jnp.float16), (1e39, jnp.bfloat16)]
)
def test_weight_not_finite_in_target_dtype_is_refused(weight, dtype):
    x = jnp.zeros(8, dtype)
    with pytest.raises(ValueError, match=rf"weight.*{jnp.dtype(dtype)}"):
        poisson_add(x, jax.random.key(0), 100, 0.05, weight)
    v = bm.Variable(jnp.zeros(8, dtype))
    with pytest.raises(ValueError, match=rf"weight.*{jnp.dtype(dtype)}"):
        PoissonInput(v, 100, 10.0, weight)


@pytest.mark.parametrize("impl", ["reference", "auto"])
@pytest.mark.parametrize("weight", [np.inf, -np.inf, np.nan])
def test_traced_non_finite_weight_leaves_zero_draws_unchanged(impl, weight):
    """A traced weight cannot be refused: elements that drew 0 spikes are left as they are."""
    key = jax.random.key(4)
    x = jnp.linspace(-1.0, 1.0, 2000, dtype=jnp.float32)
    out = np.asarray(jax.jit(lambda w: poisson_add(x, key, 100, 0.01, w, impl=impl))(jnp.float32(weight)))
    counts = oracle_counts(key, 2000, 100, 0.01)
    zero = counts == 0
    assert zero.sum() > 500 and (~zero).sum() > 500
    assert_same_bits(out[zero], np.asarray(x)[zero])
    with np.errstate(over="ignore", invalid="ignore"):
        want = np.asarray(x)[~zero] + np.float32(weight) * counts[~zero].astype(np.float32)
    assert_same_bits(out[~zero], want)


# --- item 4: a concrete 0-d array is the number it is ------------------------------------


@pytest.mark.parametrize(
    "make", [np.asarray, jnp.asarray, np.float64, np.float32], ids=["np0d", "jnp0d", "np.float64", "np.float32"]
)
def test_concrete_array_rate_and_weight_equal_the_python_number(make):
    key = jax.random.key(12)
    x = jnp.zeros(3000, jnp.float32)
    p_value = float(make(0.05))  # the number the array holds (float32-rounded for f32 arrays)
    expected = poisson_add(x, key, 1000, p_value, float(make(0.75)), impl="reference")
    got = poisson_add(x, key, 1000, make(0.05), make(0.75), impl="reference")
    assert_same_bits(got, expected)
    # The stream is the Python float's: a float32 p is not rounded again on the way.
    want = oracle_counts(key, 3000, 1000, p_value).astype(np.float32) * np.float32(float(make(0.75)))
    assert_same_bits(got, want)


def test_concrete_array_p_out_of_range_is_refused_not_nan():
    with pytest.raises(ValueError, match=r"\bp\b"):
        poisson_add(jnp.zeros(4), jax.random.key(0), 10, jnp.asarray(1.5), 1.0)


def test_0d_array_freq_same_checks_and_same_stream_as_the_float():
    v1, v2 = bm.Variable(jnp.zeros(2000)), bm.Variable(jnp.zeros(2000))
    a = PoissonInput(v1, 1000, jnp.asarray(5000.0), 1.0, seed=3)
    b = PoissonInput(v2, 1000, 5000.0, 1.0, seed=3)
    assert a.freq == 5000.0 and isinstance(a.freq, float)
    assert_same_bits(step(a, dt=0.1), step(b, dt=0.1))
    # A dt that makes p > 1 raises for both, naming freq and dt (the float path did already).
    for node in (a, b):
        with pytest.raises(ValueError, match=r"freq.*dt"):
            step(node, dt=1.0)
    with pytest.raises(ValueError, match=r"freq.*dt"):
        with bm.environment(dt=1.0):
            PoissonInput(bm.Variable(jnp.zeros(3)), 10, jnp.asarray(5000.0), 1.0)


def test_traced_freq_at_construction_is_refused_naming_freq():
    def build(f):
        PoissonInput(bm.Variable(jnp.zeros(3)), 10, f, 1.0)
        return f

    with pytest.raises(TypeError, match=r"\bfreq\b"):
        jax.jit(build)(10.0)


# --- item 5: grad with an integer weight ---------------------------------------------------


@pytest.mark.parametrize("impl", ["reference", "auto"])
def test_grad_with_integer_weight(impl):
    key = jax.random.key(6)
    t = jnp.linspace(0.0, 1.0, 400, dtype=jnp.float32)
    g = jax.grad(lambda t: jnp.sum(poisson_add(t, key, 100, 0.05, 1, impl=impl) ** 2))(t)
    y = np.asarray(poisson_add(t, key, 100, 0.05, 1.0, impl=impl))
    np.testing.assert_allclose(np.asarray(g), 2 * y, rtol=1e-6)
    # An integer weight under jit (traced int) gives the float weight's result and gradient.
    f = jax.jit(lambda t, w: poisson_add(t, key, 100, 0.05, w, impl=impl))
    assert_same_bits(f(t, 2), f(t, 2.0))
    gw = jax.grad(lambda w: jnp.sum(poisson_add(t, key, 100, 0.05, w, impl=impl)))(1.0)
    assert float(gw) == float(oracle_counts(key, 400, 100, 0.05).sum())


# --- item 7: impl="host" with a 0-d array freq ---------------------------------------------


def test_host_impl_with_0d_array_freq_matches_host_class():
    v1, v2 = bm.Variable(jnp.zeros(500)), bm.Variable(jnp.zeros(500))
    ours = PoissonInput(v1, 1000, jnp.asarray(10.0), 0.5, impl="host")
    host = HOST(v2, 1000, 10.0, 0.5)
    bm.random.seed(8)
    a = np.asarray(
        bm.for_loop(lambda i: (bp.share.save(t=0.0, i=i, dt=0.1), ours.update(), v1.value)[-1], jnp.arange(2))
    )
    bm.random.seed(8)
    b = np.asarray(
        bm.for_loop(lambda i: (bp.share.save(t=0.0, i=i, dt=0.1), host.update(), v2.value)[-1], jnp.arange(2))
    )
    assert_same_bits(a, b)
    assert a[-1].sum() > 0


# --- item 8: a non-threefry default PRNG ---------------------------------------------------


@pytest.fixture
def rbg_default():
    old = jax.config.jax_default_prng_impl
    jax.config.update("jax_default_prng_impl", "rbg")
    try:
        yield
    finally:
        jax.config.update("jax_default_prng_impl", old)


def test_rbg_keys_give_deterministic_threefry_words(rbg_default):
    key = jax.random.key(5)
    data = np.asarray(jax.random.key_data(key))
    assert data.shape == (4,)
    # The documented derivation: threefry2x32 keyed by the first two words, applied to the
    # last two.
    want = np.asarray(threefry_2x32(jnp.asarray(data[:2]), jnp.asarray(data[2:])))
    assert np.array_equal(np.asarray(check_key(key)), want)
    assert np.array_equal(np.asarray(check_key(jnp.asarray(data))), want)  # raw rbg data too
    x = jnp.zeros(1000, jnp.float32)
    out = poisson_add(x, key, 100, 0.1, 1.0)
    assert_same_bits(out, oracle_counts(jnp.asarray(want), 1000, 100, 0.1).astype(np.float32))
    other = poisson_add(x, jax.random.key(6), 100, 0.1, 1.0)
    assert not np.array_equal(np.asarray(out), np.asarray(other))


def test_poisson_input_runs_under_rbg_default_and_reproduces(rbg_default):
    def run(seed):
        bm.random.seed(seed)
        v = bm.Variable(jnp.zeros(1000))
        node = PoissonInput(v, 1000, 10.0, 1.0)
        return np.stack([step(node, i) for i in range(3)])

    a, b, c = run(1), run(1), run(2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.all(a == np.round(a)) and a[-1].sum() > 0


def test_own_seed_stream_does_not_depend_on_the_default_prng(rbg_default):
    v = bm.Variable(jnp.zeros(800))
    under_rbg = step(PoissonInput(v, 1000, 10.0, 1.0, seed=11))
    jax.config.update("jax_default_prng_impl", "threefry2x32")
    v.value = jnp.zeros(800)
    under_threefry = step(PoissonInput(v, 1000, 10.0, 1.0, seed=11))
    assert_same_bits(under_rbg, under_threefry)
    key = jax.random.fold_in(jax.random.key(11, impl="threefry2x32"), 0)
    assert_same_bits(under_rbg, oracle_counts(key, 800, 1000, 0.001).astype(np.float32))


# --- item 11: impl="auto" resolves through the process default -----------------------------


def _lowered(impl="auto"):
    f = jax.jit(lambda x: poisson_add(x, jax.random.key(0), 10, 0.1, 1.0, impl=impl))
    return f.lower(jnp.zeros(16, jnp.float32)).as_text()


def test_auto_follows_set_default_impl_using_impl_and_env(monkeypatch):
    from brainpy_poisson_plugin.ops import native

    if not native.available("cpu"):
        pytest.skip("the CPU kernel is not built here: auto is the reference either way")
    assert "bpp_poisson_add" in _lowered()
    with using_impl("reference"):
        assert "bpp_poisson_add" not in _lowered()
    with using_impl("host"):  # "host" has no functional form: it means auto for poisson_add
        assert "bpp_poisson_add" in _lowered()
    set_default_impl("reference")
    try:
        assert "bpp_poisson_add" not in _lowered()
        assert "bpp_poisson_add" in _lowered("fused")  # an explicit impl is not overridden
    finally:
        set_default_impl(None)
    monkeypatch.setenv("BRAINPY_POISSON_IMPL", "reference")
    assert "bpp_poisson_add" not in _lowered()


def test_default_fused_without_a_kernel_for_the_dtype_is_an_error():
    with using_impl("fused"):
        with pytest.raises(RuntimeError, match="fused"):
            poisson_add(jnp.zeros(4, jnp.float16), jax.random.key(0), 10, 0.1, 1.0)


# --- item 12: impl="host" with seed= ---------------------------------------------------------


def test_host_impl_with_seed_is_refused():
    with pytest.raises(ValueError, match=r"seed.*host"):
        PoissonInput(bm.Variable(jnp.zeros(3)), 10, 10.0, 1.0, impl="host", seed=1)


def test_seed_with_host_as_process_default_raises_before_anything_changes():
    v = bm.Variable(jnp.ones(3))
    node = PoissonInput(v, 10, 10.0, 1.0, seed=1)
    with using_impl("host"):
        with pytest.raises(ValueError, match=r"seed.*host"):
            step(node)
    assert int(node.rng_step.value) == 0
    assert np.array_equal(np.asarray(v.value), np.ones(3))


# --- item 13: check first, then advance -------------------------------------------------


def _global_key():
    return np.asarray(jax.random.key_data(bm.random.DEFAULT.value))


def test_failed_step_leaves_rng_step_global_key_and_target_unchanged():
    with bm.environment(dt=0.01):
        v = bm.Variable(jnp.zeros(4))
        own = PoissonInput(v, 10, np.array(20000.0), 1.0, seed=2)  # p = 0.2 at dt = 0.01
        glob = PoissonInput(v, 10, np.array(20000.0), 1.0)
    for node in (own, glob):
        before = _global_key()
        with pytest.raises(ValueError, match=r"freq.*dt"):
            step(node, dt=0.1)  # p = 2
        assert np.array_equal(_global_key(), before)
        assert np.array_equal(np.asarray(v.value), np.zeros(4))
    assert int(own.rng_step.value) == 0
    # The node still works afterwards, from the first key of its stream.
    assert np.array_equal(
        step(own, dt=0.01),
        oracle_counts(jax.random.fold_in(jax.random.key(2), 0), 4, 10, 20000.0 * 0.01 / 1e3).astype(np.float32),
    )


def test_float8_target_refused_at_construction_and_at_update():
    f8 = getattr(jnp, "float8_e4m3fn", None)
    if f8 is None:
        pytest.skip("this jax has no float8 dtype")
    with pytest.raises(TypeError, match=r"target_var"):
        PoissonInput(bm.Variable(jnp.zeros(4, f8)), 10, 10.0, 1.0)
    with pytest.raises(TypeError, match=r"\btarget\b"):
        poisson_add(jnp.zeros(4, f8), jax.random.key(0), 10, 0.1, 1.0)
    # A target swapped for a float8 array after construction: refused before the RNG moves.
    v = bm.Variable(jnp.zeros(4))
    node = PoissonInput(v, 10, 10.0, 1.0)
    v._value = jnp.zeros(4, f8)
    before = _global_key()
    with pytest.raises(TypeError, match=r"\btarget\b"):
        step(node)
    assert np.array_equal(_global_key(), before)


# --- item 14: errors that name the argument --------------------------------------------------

BAD_ADD = [
    (dict(p=10**400), ValueError, "p"),
    (dict(weight=10**400), ValueError, "weight"),
    (dict(weight=-(10**400)), ValueError, "weight"),
    (dict(p=np.array("0.1")), TypeError, "p"),
    (dict(weight=np.array("1")), TypeError, "weight"),
    (dict(p="0.1"), TypeError, "p"),
    (dict(p=0.1 + 0j), TypeError, "p"),
    (dict(p=np.complex128(0.1)), TypeError, "p"),
    (dict(p=np.array(0.1 + 0.0j)), TypeError, "p"),
    (dict(p=jnp.asarray(0.1 + 0.0j)), TypeError, "p"),
    (dict(weight=np.complex64(1.0)), TypeError, "weight"),
    (dict(p=True), TypeError, "p"),
    (dict(weight=np.bool_(True)), TypeError, "weight"),
    (dict(num_input=np.array(10.0)), TypeError, "num_input"),
    (dict(num_input=10**400), ValueError, "num_input"),
    (dict(key=jnp.zeros(3, jnp.uint32)), ValueError, "key"),
    (dict(key=jnp.zeros(2, jnp.int32)), ValueError, "key"),
    (dict(key="key"), TypeError, "key"),
    (dict(target=jnp.zeros(3, jnp.complex64)), TypeError, "target"),
]


@pytest.mark.parametrize("bad, exc, name", BAD_ADD, ids=[f"{b[2]}-{i}" for i, b in enumerate(BAD_ADD)])
def test_poisson_add_errors_name_the_argument(bad, exc, name):
    args = dict(target=jnp.zeros(4, jnp.float32), key=jax.random.key(0), num_input=10, p=0.1, weight=1.0)
    args.update(bad)
    with pytest.raises(exc, match=rf"\b{name}\b"):
        poisson_add(**args)


BAD_INPUT = [
    (dict(seed=2**64), ValueError, "seed"),
    (dict(seed=2**63), ValueError, "seed"),
    (dict(seed=True), TypeError, "seed"),
    (dict(seed=np.array([1, 2])), ValueError, "seed"),
    (dict(freq=10**400), ValueError, "freq"),
    (dict(weight=10**400), ValueError, "weight"),
    (dict(freq=np.array("10")), TypeError, "freq"),
    (dict(freq=np.complex128(10.0)), TypeError, "freq"),
    (dict(weight=np.complex128(1.0 + 1.0j)), TypeError, "weight"),
    (dict(freq=10.0 + 0j), TypeError, "freq"),
    (dict(num_input=np.bool_(True)), TypeError, "num_input"),
]


@pytest.mark.parametrize("bad, exc, name", BAD_INPUT, ids=[f"{b[2]}-{i}" for i, b in enumerate(BAD_INPUT)])
def test_poisson_input_errors_name_the_argument(bad, exc, name):
    args = dict(target_var=bm.Variable(jnp.zeros(4)), num_input=10, freq=10.0, weight=1.0)
    args.update(bad)
    with pytest.raises(exc, match=rf"\b{name}\b"):
        PoissonInput(**args)


def test_accepted_forms_of_seed_and_num_input():
    v = bm.Variable(jnp.zeros(100))
    a = PoissonInput(v, np.int64(100), 10.0, 1.0, seed=np.uint32(7))
    b = PoissonInput(v, jnp.asarray(100), 10.0, 1.0, seed=7)
    assert a.seed == b.seed == 7 and a.num_input == b.num_input == 100
    big = PoissonInput(v, 100, 10.0, 1.0, seed=2**63 - 1)
    assert big.seed == 2**63 - 1
