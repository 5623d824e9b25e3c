"""Property test of the argument checks (issue 12): for random values of every type family
(Python/numpy/JAX scalars and 0-d arrays, bool, complex, str, huge ints, NaN/inf, arrays of
another shape), the plugin either accepts the value and gives the same result as the
equivalent Python number, or raises TypeError/ValueError naming the argument - never
another exception, never a half-applied state.

Derandomized with moderate example counts (CI has 2 cores).
"""

from __future__ import annotations

import brainpy as bp
import brainpy.math as bm
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from bits import assert_same_bits

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from brainpy_poisson_plugin import PoissonInput, poisson_add

SETTINGS = settings(max_examples=60, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
_unit = st.floats(min_value=0.0, max_value=1.0)
_ints = st.one_of(st.integers(-(2**70), 2**70), st.sampled_from([10**400, -(10**400), 0, 1, 2**31, 2**64]))


def _wrapped(number_strategy):
    """Every form a number can come in: Python, numpy scalar, 0-d numpy / JAX array."""
    forms = [
        lambda v: v,
        lambda v: np.float64(v),
        lambda v: np.float32(v),
        lambda v: np.asarray(v, np.float64),
        lambda v: np.asarray(v, np.float32),
        lambda v: jnp.asarray(v, jnp.float32),
    ]
    return st.tuples(number_strategy, st.sampled_from(forms)).map(lambda t: _apply_form(*t))


def _apply_form(v, form):
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            return form(v)
        except (OverflowError, ValueError):
            return v


def values():
    """Any value a user might pass for a real scalar argument."""
    return st.one_of(
        _wrapped(_floats),
        _wrapped(_unit),
        _ints,
        st.integers(-5, 5).map(np.int32),
        st.integers(0, 5).map(lambda i: np.asarray(i, np.int64)),
        st.integers(0, 5).map(lambda i: jnp.asarray(i, jnp.int32)),
        st.booleans(),
        st.booleans().map(np.bool_),
        st.booleans().map(jnp.asarray),
        st.complex_numbers(max_magnitude=2.0),
        st.complex_numbers(max_magnitude=2.0).map(np.complex128),
        st.complex_numbers(max_magnitude=2.0).map(lambda c: np.asarray(c, np.complex64)),
        st.complex_numbers(max_magnitude=2.0).map(lambda c: jnp.asarray(c, jnp.complex64)),
        st.text(max_size=4),
        st.text(max_size=4).map(np.asarray),
        st.just(None),
        _unit.map(lambda v: np.asarray([v, v])),
        _unit.map(lambda v: jnp.asarray([v])),
    )


def python_number(value) -> float:
    """The Python float an accepted value stands for."""
    return float(np.asarray(value).item()) if hasattr(value, "shape") else float(value)


def _names(exc: Exception, name: str) -> bool:
    return name in str(exc)


X = jnp.linspace(-1.0, 1.0, 32, dtype=jnp.float32)
KEY = jax.random.key(99)


@SETTINGS
@given(value=values())
def test_poisson_add_p(value):
    try:
        out = poisson_add(X, KEY, 50, value, 1.0, impl="reference")
    except (TypeError, ValueError) as exc:
        assert _names(exc, "p"), exc
        return
    assert_same_bits(out, poisson_add(X, KEY, 50, python_number(value), 1.0, impl="reference"))


@SETTINGS
@given(value=values())
def test_poisson_add_weight(value):
    try:
        out = poisson_add(X, KEY, 50, 0.1, value, impl="reference")
    except (TypeError, ValueError) as exc:
        assert _names(exc, "weight"), exc
        return
    assert_same_bits(out, poisson_add(X, KEY, 50, 0.1, python_number(value), impl="reference"))


@SETTINGS
@given(value=values())
def test_poisson_add_num_input(value):
    try:
        out = poisson_add(X, KEY, value, 0.1, 1.0, impl="reference")
    except (TypeError, ValueError) as exc:
        assert _names(exc, "num_input"), exc
        return
    n = int(np.asarray(value).item()) if hasattr(value, "shape") else int(value)
    assert n == python_number(value)  # only integers are accepted
    assert_same_bits(out, poisson_add(X, KEY, n, 0.1, 1.0, impl="reference"))


def test_python_floats_in_range_are_always_accepted():
    for p in (0.0, 5e-324, 0.5, 1.0):
        poisson_add(X, KEY, 50, p, -3.5, impl="reference")


def _global_key() -> np.ndarray:
    return np.asarray(jax.random.key_data(bm.random.DEFAULT.value))


def _step(node, dt=0.1):
    bp.share.save(t=0.0, i=0, dt=dt)
    node.update()
    return np.asarray(node.target_var.value)


@SETTINGS
@given(arg=st.sampled_from(["freq", "weight"]), value=values())
def test_poisson_input_constructor(arg, value):
    v = bm.Variable(X)
    kwargs = dict(num_input=50, freq=100.0, weight=1.0, seed=4, impl="reference")
    kwargs[arg] = value
    before = _global_key()
    try:
        node = PoissonInput(v, **kwargs)
    except (TypeError, ValueError) as exc:
        assert _names(exc, arg), exc
        assert np.array_equal(np.asarray(v.value), np.asarray(X))
        assert np.array_equal(_global_key(), before)
        return
    number = python_number(value)
    assert getattr(node, arg) == number and isinstance(getattr(node, arg), float)
    kwargs[arg] = number
    twin = PoissonInput(bm.Variable(X), **kwargs)
    assert_same_bits(_step(node), _step(twin))


@SETTINGS
@given(arg=st.sampled_from(["num_input", "seed"]), value=values())
def test_poisson_input_integer_arguments(arg, value):
    v = bm.Variable(X)
    kwargs = dict(num_input=50, freq=100.0, weight=1.0, seed=4, impl="reference")
    kwargs[arg] = value
    try:
        node = PoissonInput(v, **kwargs)
    except (TypeError, ValueError) as exc:
        assert _names(exc, arg), exc
        assert np.array_equal(np.asarray(v.value), np.asarray(X))
        return
    if value is None:  # seed=None: the global stream
        assert node.seed is None
        return
    assert getattr(node, arg) == int(python_number(value))


@SETTINGS
@given(value=values())
def test_poisson_input_update_checks_before_advancing(value):
    """A freq changed after construction is checked at the step, before any state moves."""
    v = bm.Variable(X)
    own = PoissonInput(v, 50, 100.0, 1.0, seed=4, impl="reference")
    glob = PoissonInput(v, 50, 100.0, 1.0, impl="reference")
    for node in (own, glob):
        node.freq = value
        before_key, before_target = _global_key(), np.asarray(v.value)
        before_step = int(own.rng_step.value)
        try:
            _step(node)
        except (TypeError, ValueError) as exc:
            assert _names(exc, "freq"), exc
            assert np.array_equal(_global_key(), before_key)
            assert np.array_equal(np.asarray(v.value), before_target)
            assert int(own.rng_step.value) == before_step
            continue
        assert 0.0 <= python_number(value) * 0.1 / 1e3 <= 1.0
