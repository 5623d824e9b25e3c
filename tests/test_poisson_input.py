"""The drop-in PoissonInput inside real BrainPy models."""

from __future__ import annotations

import brainpy as bp
import brainpy.math as bm
import jax.numpy as jnp
import numpy as np
import pytest

from brainpy_poisson_plugin import PoissonInput, using_impl
from brainpy_poisson_plugin.host.compat import original_poisson_input_class

HOST = original_poisson_input_class()


class LifNet(bp.DynSysGroup):
    """1,000 LIF neurons driven only by background Poisson input."""

    def __init__(self, cls, num=1000, **kwargs):
        super().__init__()
        self.N = bp.dyn.LifRef(
            num,
            V_rest=-65.0,
            V_th=-50.0,
            V_reset=-65.0,
            tau=10.0,
            tau_ref=2.0,
            V_initializer=bp.init.Uniform(-65.0, -50.0),
        )
        # 1,000 inputs at 10 Hz, weight 0.25 mV: mean drive ~2.5 mV/ms, near threshold.
        self.inp = cls(self.N.V, 1000, 10.0, 0.25, **kwargs)

    def update(self):
        super().update()
        return self.N.spike.value


def firing_rates(cls, seed=0, duration=300.0, **kwargs):
    bm.random.seed(seed)
    net = LifNet(cls, **kwargs)
    runner = bp.DSRunner(net, monitors={"spike": net.N.spike}, progress_bar=False)
    runner.run(duration)
    spikes = np.asarray(runner.mon["spike"])
    return spikes.sum(0) / (duration / 1000.0)  # Hz per neuron


def test_same_mean_rate_as_host_network():
    host = firing_rates(HOST)
    ours = firing_rates(PoissonInput)
    # Per-neuron rates are independent across neurons (no recurrence): compare the means
    # within 5 standard errors of the difference.
    se = np.sqrt(host.var() / host.size + ours.var() / ours.size)
    assert host.mean() > 1.0, "the test network must fire"
    assert abs(host.mean() - ours.mean()) < 5 * se, (host.mean(), ours.mean(), se)


def test_reproducible_from_global_seed_and_different_across_seeds():
    a = firing_rates(PoissonInput, seed=3, duration=50.0)
    b = firing_rates(PoissonInput, seed=3, duration=50.0)
    c = firing_rates(PoissonInput, seed=4, duration=50.0)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_isinstance_of_host_class_and_projection():
    v = bm.Variable(jnp.zeros(5))
    node = PoissonInput(v, 10, 5.0, 1.0)
    assert isinstance(node, HOST)
    assert isinstance(node, bp.Projection)
    assert isinstance(node, bp.DynamicalSystem)


def test_update_order_projections_before_dynamics():
    """DynSysGroup runs projections before dynamics: the neuron sees this step's input."""
    seen = []

    class Probe(bp.dyn.NeuDyn):
        def __init__(self):
            super().__init__(3)
            self.x = bm.Variable(jnp.zeros(3))

        def update(self):
            seen.append(self.x.value)  # traced once per call below

    class Group(bp.DynSysGroup):
        def __init__(self):
            super().__init__()
            self.probe = Probe()
            self.inp = PoissonInput(self.probe.x, 7, 1e4, 1.0)  # p = 1: adds exactly 7

    g = Group()
    with bp.share.context(dt=0.1, t=0.0, i=0) if hasattr(bp.share, "context") else _dt_context():
        g.update()
    assert np.array_equal(np.asarray(seen[0]), np.full(3, 7.0))


class _dt_context:
    def __enter__(self):
        bp.share.save(dt=0.1, t=0.0, i=0)

    def __exit__(self, *exc):
        return False


def run_steps(node, steps=5):
    def step(i):
        bp.share.save(t=i * bm.get_dt(), i=i, dt=bm.get_dt())
        node.update()
        return node.target_var.value

    return bm.for_loop(step, jnp.arange(steps))


def test_for_loop_jit_and_batching_mode():
    v = bm.Variable(jnp.zeros((4, 2000)), batch_axis=0)
    node = PoissonInput(v, 1000, 10.0, 1.0, mode=bm.BatchingMode(4))
    bm.random.seed(1)
    trace = np.asarray(run_steps(node, 3))
    assert trace.shape == (3, 4, 2000)
    rows = trace[-1]
    assert all(np.mean(rows[i] != rows[i + 1]) > 0.3 for i in range(3)), "batch rows must differ"
    # Under bm.jit
    v2 = bm.Variable(jnp.zeros(1000))
    node2 = PoissonInput(v2, 1000, 10.0, 1.0)
    f = bm.jit(lambda: (bp.share.save(dt=0.1, t=0.0, i=0), node2.update()))
    f()
    assert np.asarray(v2.value).sum() > 0


def test_own_seed_reproduces_and_reset_rewinds():
    v = bm.Variable(jnp.zeros(500))
    node = PoissonInput(v, 1000, 10.0, 1.0, seed=123)
    first = np.asarray(run_steps(node, 4))
    v.value = jnp.zeros(500)
    node.reset_state()
    again = np.asarray(run_steps(node, 4))
    assert np.array_equal(first, again)
    assert not np.array_equal(first[0], first[1]), "consecutive steps use new draws"


def test_state_methods_and_repr():
    v = bm.Variable(jnp.zeros(10))
    node = PoissonInput(v, 10, 5.0, 1.0, seed=1, name="bg")
    assert "bg" in node.nodes().keys()
    assert any("rng_step" in k for k in node.vars().keys())
    run_steps(node, 2)
    state = node.save_state()
    node.reset()
    assert int(node.rng_step.value) == 0
    node.load_state(state)
    assert int(node.rng_step.value) == 2
    text = repr(node)
    assert "num_input=10" in text and "freq=5.0" in text and "bg" in text


def test_host_impl_delegates_to_brainpy():
    v = bm.Variable(jnp.zeros(10000))
    node = PoissonInput(v, 10000, 20.0, 1.0, impl="host")  # mean 20: host uses its normal approximation
    bm.random.seed(0)
    out = np.asarray(run_steps(node, 1))[0]
    assert not np.all(out == np.round(out)), "the host's normal approximation gives non-integer counts"
    v.value = jnp.zeros(10000)
    with using_impl("reference"):
        node_auto = PoissonInput(v, 10000, 20.0, 1.0)
        out2 = np.asarray(run_steps(node_auto, 1))[0]
    assert np.all(out2 == np.round(out2)), "exact binomial counts are integers"


BAD = [
    (dict(target_var=jnp.zeros(3)), TypeError, "target_var"),
    (dict(target_var="int"), TypeError, "target_var"),
    (dict(target_var="bool"), TypeError, "target_var"),
    (dict(num_input=0), ValueError, "num_input"),
    (dict(num_input=1.5), TypeError, "num_input"),
    (dict(freq=-1.0), ValueError, "freq"),
    (dict(freq=float("inf")), ValueError, "freq"),
    (dict(freq=[1.0, 2.0]), TypeError, "freq"),
    (dict(freq=jnp.ones(3)), ValueError, "freq"),
    (dict(weight=float("nan")), ValueError, "weight"),
    (dict(weight=np.ones(2)), ValueError, "weight"),
    (dict(freq=20_000.0), ValueError, "dt"),
    (dict(impl="cuda"), ValueError, "impl"),
    (dict(seed=1.5), TypeError, "seed"),
]


@pytest.mark.parametrize("bad, exc, name", BAD, ids=[f"{b[2]}-{i}" for i, b in enumerate(BAD)])
def test_bad_input_is_refused_before_any_work(bad, exc, name):
    args = dict(target_var=bm.Variable(jnp.zeros(4)), num_input=10, freq=10.0, weight=1.0)
    if bad.get("target_var") == "int":
        bad = dict(target_var=bm.Variable(jnp.zeros(4, jnp.int32)))
    elif bad.get("target_var") == "bool":
        bad = dict(target_var=bm.Variable(jnp.zeros(4, bool)))
    args.update(bad)
    before = np.asarray(args["target_var"].value) if isinstance(args["target_var"], bm.Variable) else None
    with pytest.raises(exc, match=rf"\b{name}\b"):
        PoissonInput(**args)
    if before is not None:
        assert np.array_equal(np.asarray(args["target_var"].value), before)


def test_rate_too_high_for_a_smaller_dt_at_run_time_names_freq_and_dt():
    v = bm.Variable(jnp.zeros(4))
    node = PoissonInput(v, 10, 5000.0, 1.0)  # p = 0.5 at dt = 0.1
    with pytest.raises(ValueError, match=r"freq.*dt"):
        bp.share.save(dt=1.0, t=0.0, i=0)
        node.update()
    assert np.array_equal(np.asarray(v.value), np.zeros(4))


def test_traced_dt_time_varying_rate():
    """A traced dt (e.g. an adaptive step) still samples exactly: same draws as concrete."""
    v = bm.Variable(jnp.zeros(3000))
    node = PoissonInput(v, 1000, 10.0, 1.0, seed=5)

    def step(dt):
        bp.share.save(t=0.0, i=0, dt=dt)
        node.update()
        return v.value

    traced = np.asarray(bm.jit(step)(jnp.float32(0.1)))
    v.value = jnp.zeros(3000)
    node.reset_state()
    concrete = np.asarray(step(0.1))
    assert np.array_equal(traced, concrete)
