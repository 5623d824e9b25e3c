"""``brainpy.state.PoissonInput`` / ``poisson_input`` served by the plugin: drop-in semantics, exact counts.

On a host without ``brainpy.state`` (BrainPy < 2.8) the module is skipped, saying so.
"""

from __future__ import annotations

import numpy as np
import pytest
from bits import assert_same_bits
from packaging.version import Version

bp = pytest.importorskip("brainpy")
if Version(bp.__version__) < Version("2.8"):
    pytest.skip(f"BrainPy {bp.__version__} lacks brainpy.state (added in 2.8)", allow_module_level=True)

import brainstate
import brainunit as u
import jax
import jax.numpy as jnp

from brainpy_poisson_plugin.host import compat, state_forms, state_inputs
from brainpy_poisson_plugin.ops.poisson_add import poisson_add

HOST_CLS = compat.original_state_poisson_input_class()
HOST_FN = compat.original_state_poisson_input()
DT = 0.1 * u.ms


@pytest.fixture(autouse=True)
def _dt():
    with brainstate.environ.context(dt=DT):
        yield


def _exact_p(freq_hz: float, dt_ms: float) -> float:
    return float(-np.expm1(-freq_hz * dt_ms * 1e-3))


def _rng_words() -> np.ndarray:
    return np.asarray(jax.random.key_data(brainstate.random.DEFAULT.value))


# --------------------------------------------------------------------------------------
# Exact counts
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", ["reference", "auto"])
@pytest.mark.parametrize(
    ("num_input", "freq_hz", "dt_ms"),
    [(1000, 10.0, 0.1), (10_000, 20.0, 0.1), (100, 5.0, 0.1), (200, 300.0, 1.0), (40, 2000.0, 0.5)],
)
def test_counts_are_exact_binomial_with_host_p(gof, impl, num_input, freq_hz, dt_ms):
    """The grid includes rates where the host takes its normal branch (num_input * p > 5)."""
    brainstate.random.seed(7)
    with brainstate.environ.context(dt=dt_ms * u.ms):
        target = brainstate.HiddenState(jnp.zeros(200_000, jnp.float32))
        state_inputs.poisson_input(freq_hz * u.Hz, num_input, 1.0, target, impl=impl)
    counts = np.asarray(target.value)
    assert np.all(counts == np.round(counts))
    pvalue, bins = gof(counts, num_input, _exact_p(freq_hz, dt_ms))
    assert bins >= 2 and pvalue > 1e-4, (pvalue, bins)


def test_for_loop_sum_is_binomial(gof):
    """100 steps under jit + for_loop: each element's total is Binomial(100 * n, p)."""
    brainstate.random.seed(3)
    target = brainstate.HiddenState(jnp.zeros(50_000, jnp.float32) * u.mV)

    @brainstate.transform.jit
    def run():
        def step(i):
            state_inputs.poisson_input(10.0 * u.Hz, 100, 1.0 * u.mV, target)

        brainstate.transform.for_loop(step, jnp.arange(100))

    run()
    totals = np.asarray(target.value.to_decimal(u.mV))
    pvalue, _ = gof(totals, 100 * 100, _exact_p(10.0, 0.1))
    assert pvalue > 1e-4


# --------------------------------------------------------------------------------------
# Host semantics: units, indices, refractory, State freq/weight
# --------------------------------------------------------------------------------------


def test_units_round_trip_in_the_targets_unit():
    brainstate.random.seed(1)
    target = brainstate.HiddenState(jnp.zeros(1000) * u.mV)
    state_inputs.poisson_input(1000.0 * u.Hz, 50, 0.002 * u.volt, target)  # 2 mV per input spike
    value = target.value
    assert isinstance(value, u.Quantity) and value.unit == u.mV
    mv = np.asarray(value.to_decimal(u.mV))
    assert np.allclose(mv / 2.0, np.round(mv / 2.0), atol=1e-5) and mv.max() > 0
    plain = brainstate.HiddenState(jnp.zeros(10))
    state_inputs.poisson_input(1000.0 * u.Hz, 50, 0.5, plain)
    assert not isinstance(plain.value, u.Quantity) and plain.value.dtype == jnp.float32


@pytest.mark.parametrize(
    ("freq", "weight", "value"),
    [
        (1000.0 * u.Hz, 0.5, jnp.zeros(4) * u.mV),  # unitless weight, mV target
        (1000.0 * u.Hz, 0.5 * u.second, jnp.zeros(4) * u.mV),  # wrong dimension
        (1000.0 * u.Hz, 0.5 * u.mV, jnp.ones(4)),  # unit weight, unitless (non-zero) target
        (10.0, 0.5 * u.mV, jnp.zeros(4) * u.mV),  # freq without Hz while dt is in ms
    ],
)
def test_unit_mismatch_raises_as_the_host_and_leaves_everything(freq, weight, value):
    """The host raises from ``tar + x * weight`` (brainunit lets an all-zero increment pass, so
    the rates here make sure some count is non-zero); the plugin raises the same error type
    on every call, before the key is split."""
    host_target = brainstate.HiddenState(value)
    with pytest.raises(Exception) as host_exc:
        HOST_FN(freq, 100, weight, host_target)
    target = brainstate.HiddenState(value)
    before = _rng_words()
    with pytest.raises(type(host_exc.value)):
        state_inputs.poisson_input(freq, 100, weight, target)
    assert type(host_exc.value).__name__ == "UnitMismatchError"
    np.testing.assert_array_equal(_rng_words(), before)  # no key split
    assert target.value is value


def _initial(n: int) -> jax.Array:
    values = np.random.default_rng(0).normal(size=n).astype(np.float32)
    values[::7] = -0.0
    values[3] = np.nan
    return jnp.asarray(values)


@pytest.mark.parametrize("fn", [HOST_FN, state_inputs.poisson_input], ids=["host", "plugin"])
def test_indices_leave_every_other_element_untouched(fn):
    init = _initial(1000)
    idx = np.array([5, 17, 17, 400, 999])
    target = brainstate.HiddenState(init * u.mV)
    brainstate.random.seed(2)
    fn(5000.0 * u.Hz, 100, 1.0 * u.mV, target, indices=idx)
    out = np.asarray(target.value.to_decimal(u.mV))
    outside = np.setdiff1d(np.arange(1000), idx)
    assert_same_bits(out[outside], np.asarray(init)[outside])
    assert np.all(out[idx] != np.asarray(init)[idx])  # p = 0.39, 100 inputs: never 0 in practice


def test_indices_draws_are_indexed_by_position_and_repeats_accumulate():
    init = _initial(64)
    idx = jnp.array([10, 3, 3, 60])
    target = brainstate.HiddenState(init)
    brainstate.random.seed(11)
    state_inputs.poisson_input(2000.0 * u.Hz, 30, 0.25, target, indices=idx, impl="reference")
    brainstate.random.seed(11)
    key = brainstate.random.split_key()
    p = state_inputs.spike_probability(2000.0 * u.Hz)
    draws = np.asarray(poisson_add(jnp.zeros(4, jnp.float32), key, 30, p, 0.25, impl="reference"))
    expected = np.asarray(init).copy()
    np.add.at(expected, np.asarray(idx), draws)
    assert_same_bits(np.asarray(target.value), expected)


@pytest.mark.parametrize("fn", [HOST_FN, state_inputs.poisson_input], ids=["host", "plugin"])
@pytest.mark.parametrize("with_indices", [False, True])
def test_refractory_elements_keep_their_bits(fn, with_indices):
    init = _initial(2000)
    refractory = np.zeros(2000, bool)
    refractory[100:900] = True
    refractory[3] = True  # the NaN stays NaN
    target = brainstate.HiddenState(init)
    brainstate.random.seed(4)
    indices = np.arange(0, 2000, 2) if with_indices else None
    fn(5000.0 * u.Hz, 100, 1.0, target, indices=indices, refractory=refractory)
    out = np.asarray(target.value)
    assert_same_bits(out[refractory], np.asarray(init)[refractory])
    receiving = ~refractory & (np.isin(np.arange(2000), indices) if with_indices else True)
    assert np.all(out[receiving] != np.asarray(init)[receiving])


def test_state_freq_and_weight_changed_between_jitted_steps_are_followed():
    freq = brainstate.State(10.0 * u.Hz)
    weight = brainstate.State(1.0 * u.mV)
    target = brainstate.HiddenState(jnp.zeros(100_000) * u.mV)

    @brainstate.transform.jit
    def step():
        target.value = jnp.zeros(100_000) * u.mV
        state_inputs.poisson_input(freq, 1000, weight, target)

    means = []
    for f_hz, w_mv in ((10.0, 1.0), (100.0, 1.0), (100.0, 0.5)):
        freq.value = f_hz * u.Hz
        weight.value = w_mv * u.mV
        step()
        means.append(float(np.mean(np.asarray(target.value.to_decimal(u.mV)))))
    expected = [1000 * _exact_p(10.0, 0.1), 1000 * _exact_p(100.0, 0.1), 0.5 * 1000 * _exact_p(100.0, 0.1)]
    for got, want, w in zip(means, expected, (1.0, 1.0, 0.5)):
        sigma = w * np.sqrt(want / w / 100_000)  # std of the mean of Binomial counts (~Poisson)
        assert abs(got - want) < 6 * sigma, (means, expected)


def test_vmap_over_a_batch_gives_independent_rows(gof):
    target = brainstate.HiddenState(jnp.zeros((8, 20_000)))
    brainstate.random.seed(5)

    def one(row):
        s = brainstate.HiddenState(row)
        state_inputs.poisson_input(50.0 * u.Hz, 200, 1.0, s)
        return s.value

    out = np.asarray(brainstate.transform.vmap(one)(target.value))
    assert len({row.tobytes() for row in out}) == 8
    pvalue, _ = gof(out, 200, _exact_p(50.0, 0.1))
    assert pvalue > 1e-4


# --------------------------------------------------------------------------------------
# Reproducibility, one key per call, bad input
# --------------------------------------------------------------------------------------


def _run(seed: int) -> np.ndarray:
    brainstate.random.seed(seed)
    target = brainstate.HiddenState(jnp.zeros(5000, jnp.float32) * u.mV)
    for _ in range(3):
        state_inputs.poisson_input(20.0 * u.Hz, 500, 0.1 * u.mV, target)
    return np.asarray(target.value.to_decimal(u.mV))


def test_brainstate_seed_reproduces_bits():
    assert_same_bits(_run(123), _run(123))
    assert not np.array_equal(_run(123), _run(124))


def test_one_key_per_call():
    brainstate.random.seed(9)
    brainstate.random.split_key()
    expected_next = np.asarray(jax.random.key_data(brainstate.random.split_key()))
    brainstate.random.seed(9)
    state_inputs.poisson_input(10.0 * u.Hz, 100, 1.0, brainstate.HiddenState(jnp.zeros(10)))
    assert_same_bits(np.asarray(jax.random.key_data(brainstate.random.split_key())), expected_next)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"freq": -5.0 * u.Hz}, ValueError, "freq"),
        ({"weight": float("nan") * u.mV}, ValueError, "weight"),
        ({"num_input": 0}, ValueError, "num_input"),
        ({"impl": "fast"}, ValueError, "impl"),
        ({"refractory": np.zeros(3, bool)}, ValueError, "refractory"),
        ({"target": jnp.zeros(10) * u.mV}, TypeError, "target"),
    ],
)
def test_bad_input_raises_before_any_draw(kwargs, error, match):
    target = brainstate.HiddenState(jnp.zeros(10) * u.mV)
    value = target.value
    args = {"freq": 10.0 * u.Hz, "num_input": 100, "weight": 1.0 * u.mV, "target": target} | kwargs
    before = _rng_words()
    with pytest.raises(error, match=match):
        state_inputs.poisson_input(**args)
    np.testing.assert_array_equal(_rng_words(), before)
    assert target.value is value


# --------------------------------------------------------------------------------------
# Delegated forms run the host's code
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "freq", "weight", "value"),
    [
        ("array-freq", jnp.linspace(1.0, 100.0, 50) * u.Hz, 1.0, jnp.zeros(50)),
        ("array-weight", 100.0 * u.Hz, jnp.linspace(0.1, 1.0, 50), jnp.zeros(50)),
        ("pytree-target", 100.0 * u.Hz, 1.0, {"a": jnp.zeros(5), "b": jnp.zeros(3)}),
    ],
)
def test_delegated_forms_give_the_hosts_bits(form, freq, weight, value):
    assert state_inputs.delegated_form(freq, 100, weight, value) == form
    assert form in state_forms.DELEGATED
    results = []
    for fn in (HOST_FN, state_inputs.poisson_input):
        target = brainstate.State(value)  # brainstate.State takes a pytree (HiddenState does not)
        brainstate.random.seed(21)
        fn(freq, 100, weight, target)
        results.append(jax.tree.leaves(target.value))
    for host_leaf, plugin_leaf in zip(*results):
        assert_same_bits(np.asarray(plugin_leaf), np.asarray(host_leaf))


def test_impl_host_gives_the_hosts_bits():
    out = []
    for kwargs in ({}, {"impl": "host"}):
        target = brainstate.HiddenState(jnp.zeros(300) * u.mV)
        brainstate.random.seed(8)
        (state_inputs.poisson_input if kwargs else HOST_FN)(10.0 * u.Hz, 1000, 1.0 * u.mV, target, **kwargs)
        out.append(np.asarray(target.value.to_decimal(u.mV)))
    assert_same_bits(out[1], out[0])


def test_served_forms_are_listed():
    forms = state_forms.served_forms()
    assert set(forms) == {"served", "delegated"}
    assert {"indices", "refractory", "state-freq-weight"} <= set(forms["served"])
    assert state_inputs.delegated_form(10.0 * u.Hz, 100, 1.0 * u.mV, jnp.zeros(3) * u.mV) is None


# --------------------------------------------------------------------------------------
# The class, inside brainpy.state networks
# --------------------------------------------------------------------------------------


def test_class_is_a_host_subclass_with_the_hosts_signature():
    import inspect

    assert issubclass(state_inputs.PoissonInput, HOST_CLS)
    host_params = list(inspect.signature(HOST_CLS.__init__).parameters)
    params = inspect.signature(state_inputs.PoissonInput.__init__).parameters
    assert list(params)[: len(host_params)] == host_params
    assert params["impl"].kind is inspect.Parameter.KEYWORD_ONLY
    with pytest.raises(ValueError, match="num_input"):
        state_inputs.PoissonInput(None, None, 0, 10.0 * u.Hz, 1.0)
    with pytest.raises(ValueError, match="impl"):
        state_inputs.PoissonInput(None, None, 10, 10.0 * u.Hz, 1.0, impl="nope")


def _ei_rates(poisson_cls, seed: int) -> tuple[float, float]:
    """A 1,000-neuron brainpy.state COBA E/I network (LIFRef, AlignPostProj, Expon, COBA), 300 ms."""
    import braintools

    ne, ni = 800, 200
    num = ne + ni

    class Net(brainstate.nn.Module):
        def __init__(self):
            super().__init__()
            self.N = bp.state.LIFRef(
                num,
                R=1.0 * u.kohm,
                V_rest=-60.0 * u.mV,
                V_th=-50.0 * u.mV,
                V_reset=-60.0 * u.mV,
                tau=20.0 * u.ms,
                tau_ref=5.0 * u.ms,
                V_initializer=braintools.init.Normal(-60.0 * u.mV, 2.0 * u.mV),
            )
            self.E = bp.state.AlignPostProj(
                comm=brainstate.nn.EventFixedProb(ne, num, conn_num=0.05, conn_weight=0.5 * u.mS),
                syn=bp.state.Expon.desc(num, tau=5.0 * u.ms),
                out=bp.state.COBA.desc(E=0.0 * u.mV),
                post=self.N,
            )
            self.I = bp.state.AlignPostProj(
                comm=brainstate.nn.EventFixedProb(ni, num, conn_num=0.05, conn_weight=4.0 * u.mS),
                syn=bp.state.Expon.desc(num, tau=10.0 * u.ms),
                out=bp.state.COBA.desc(E=-80.0 * u.mV),
                post=self.N,
            )
            self.bg = poisson_cls(self.E.syn.prefetch("g"), None, 1000, 5.0 * u.Hz, 0.1 * u.mS)

        def step(self, i):
            with brainstate.environ.context(i=i, t=i * DT):
                spikes = self.N.get_spike() != 0.0
                self.E(spikes[:ne])
                self.I(spikes[ne:])
                self.bg()
                self.N()
                return self.N.get_spike() != 0.0

    brainstate.random.seed(seed)
    net = Net()
    brainstate.nn.init_all_states(net)
    spikes = np.asarray(brainstate.transform.jit(lambda: brainstate.transform.for_loop(net.step, jnp.arange(3000)))())
    spikes = spikes[1000:]  # drop the first 100 ms
    return float(spikes[:, :ne].mean() / 0.1e-3), float(spikes[:, ne:].mean() / 0.1e-3)


@pytest.mark.slow
def test_ei_network_rates_match_the_host():
    """Mean E and I rates over 3 seeds each agree within 5 standard errors of their difference.

    The standard error comes from the seed-to-seed spread of both runs (network activity is
    correlated, so a per-neuron Poisson error would be too small), floored at 2% of the rate.
    """
    _use_pure_jax_sparse_kernels()
    host = np.array([_ei_rates(HOST_CLS, s) for s in (1, 2, 3)])
    plugin = np.array([_ei_rates(state_inputs.PoissonInput, s) for s in (1, 2, 3)])
    assert np.all(host > 1.0), host  # the background input drives the network
    diff = plugin.mean(0) - host.mean(0)
    se = np.sqrt(host.var(0, ddof=1) / 3 + plugin.var(0, ddof=1) / 3)
    se = np.maximum(se, 0.02 * host.mean(0))
    assert np.all(np.abs(diff) < 5 * se), (host, plugin)


def _use_pure_jax_sparse_kernels() -> None:
    try:
        import numba  # noqa: F401
    except ImportError:
        from brainevent import config as be_config

        be_config.set_backend("cpu", "jax_raw")
