"""BrainPy-specific step builders: one jitted "run K steps" callable per implementation.

Every implementation is driven the same way, the way ``bp.DSRunner`` drives a network:
a ``bm.for_loop`` over the step indices inside one ``bm.jit``, each step saving
``dt``, ``t`` and ``i`` into ``bp.share`` and then updating. So the host's
``PoissonInput``, the plugin's reference and fused kernels and the two floors pay the
same loop overhead and differ only in the update itself.

Implementations:

- ``host``: BrainPy's own ``PoissonInput`` (read from the module that defines it, so it
  is the host's even while the plugin's swap is active);
- ``reference`` / ``fused``: the plugin's ``PoissonInput`` with that ``impl``;
- ``rng-floor``: one threefry2x32 64-bit word per element from a fresh key per step,
  folded into the target (what any counter-based sampler must at least pay);
- ``mem-floor``: ``v += c`` (one read and one write of the target per step).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from .workloads import Workload

__all__ = ["IMPLS", "FLOORS", "platforms", "unavailable_reason", "build_case", "build_time_varying_case"]

#: Implementation ids, in table order.
IMPLS = ("host", "reference", "fused", "rng-floor", "mem-floor")
#: The two floors.
FLOORS = ("rng-floor", "mem-floor")

_NATIVE_PLATFORM = {"cpu": "cpu", "gpu": "cuda", "cuda": "cuda"}


def platforms() -> list[str]:
    """JAX platforms present: ``"cpu"`` always, ``"gpu"`` when a GPU backend is found."""
    import jax

    found = ["cpu"]
    try:
        if jax.devices("gpu"):
            found.append("gpu")
    except RuntimeError:
        pass
    return found


def unavailable_reason(impl: str, platform: str) -> str | None:
    """Why ``impl`` cannot run on ``platform``, or ``None`` if it can."""
    if impl not in IMPLS:
        return f"unknown implementation {impl!r}; choose from {', '.join(IMPLS)}"
    if impl != "fused":
        return None
    try:
        from ..ops import native
    except ImportError as exc:
        return f"the native module is missing ({exc})"
    native_platform = _NATIVE_PLATFORM.get(platform, platform)
    try:
        if native.available(native_platform):
            return None
    except Exception as exc:
        return f"native.available({native_platform!r}) failed: {exc}"
    load_error = getattr(native, "load_error", lambda: None)()
    return f"no fused kernel for {native_platform}" + (f" ({load_error})" if load_error else "")


@contextlib.contextmanager
def _on(platform: str) -> Iterator[None]:
    import jax

    with jax.default_device(jax.devices(platform)[0]):
        yield


def _raw_key(key):
    import jax
    import jax.numpy as jnp

    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    return key


def _update_fn(impl: str, target, workload: Workload, mode) -> Callable[[], None]:
    """The per-step update of ``impl`` on the Variable ``target``."""
    import brainpy.math as bm
    import jax.numpy as jnp
    from jax import lax
    from jax.extend.random import threefry_2x32

    n = workload.elements
    if impl == "host":
        from ..host.compat import original_poisson_input_class

        node = original_poisson_input_class()(target, workload.num_input, workload.freq, 1.0, mode=mode)
        return node.update
    if impl in ("reference", "fused"):
        from ..host.poisson_input import PoissonInput

        node = PoissonInput(target, workload.num_input, workload.freq, 1.0, mode=mode, impl=impl)
        return node.update
    if impl == "rng-floor":

        def rng_floor() -> None:
            key = _raw_key(bm.random.split_key())
            counters = jnp.concatenate([jnp.zeros((n,), jnp.uint32), lax.iota(jnp.uint32, n)])
            bits = threefry_2x32(key, counters)
            word = (bits[:n] ^ bits[n:]) >> 31  # consume both halves of the 64-bit word
            target.value = target.value + word.reshape(target.shape).astype(target.dtype)

        return rng_floor
    if impl == "mem-floor":

        def mem_floor() -> None:
            target.value = target.value + jnp.asarray(workload.mean_count, target.dtype)

        return mem_floor
    raise ValueError(f"unknown implementation {impl!r}; choose from {', '.join(IMPLS)}")


def build_case(workload: Workload, impl: str, platform: str, steps: int, seed: int = 0) -> Callable[[], Any]:
    """Return a callable that runs ``steps`` steps of ``impl`` on ``workload`` and
    returns the target's value (to wait on). Built and run on ``platform``."""
    import brainpy as bp
    import brainpy.math as bm
    import jax.numpy as jnp

    if workload.api == "state" and impl not in FLOORS:  # W8: brainpy.state.PoissonInput
        from .state_stepper import build_state_case

        return build_state_case(workload, impl, platform, steps, seed)
    if workload.rate != "constant":
        return build_time_varying_case(workload, impl, platform, steps, seed)
    dt = workload.dt
    with _on(platform):
        bm.random.seed(seed)
        mode = bm.BatchingMode(workload.shape[0]) if workload.batching else bm.NonBatchingMode()
        if workload.batching:
            target = bm.Variable(jnp.zeros(workload.shape, jnp.float32), batch_axis=0)
        else:
            target = bm.Variable(jnp.zeros(workload.shape, jnp.float32))
        previous_dt = bm.get_dt()
        bm.set_dt(dt)
        try:
            update = _update_fn(impl, target, workload, mode)
        finally:
            bm.set_dt(previous_dt)

        def step(i):
            bp.share.save(i=i, t=i * dt, dt=dt)
            update()

        @bm.jit
        def run_steps():
            bm.for_loop(step, jnp.arange(steps), progress_bar=False)
            return target.value

    def call():
        with _on(platform):
            return run_steps()

    return call


# ----------------------------------------------------------------------------------------
# W6 / W7: rates that change every step, and sweeps over rates.
# ----------------------------------------------------------------------------------------


def _modulated_update(impl: str, workload: Workload) -> tuple[Callable[[], None], Callable[[], Any]]:
    """W6: one input whose rate is ``freq (1 + 0.5 sin(2 pi 5 Hz t))``, set every step."""
    import brainpy as bp
    import brainpy.math as bm
    import jax.numpy as jnp

    target = bm.Variable(jnp.zeros(workload.shape, jnp.float32))
    if impl in FLOORS:
        return _update_fn(impl, target, workload, bm.NonBatchingMode()), lambda: target.value
    base = workload.freq
    n = workload.num_input

    def rate():
        return base * (1.0 + 0.5 * jnp.sin(2.0 * jnp.pi * 5.0 * bp.share["t"] / 1000.0))

    if impl == "host":
        # BrainPy's PoissonInput cannot take a traced rate (with a float dt its Python
        # ``if`` on the rate fails; with a traced dt its ``bm.cond`` branches disagree in
        # dtype in BrainPy 2.9), so the host row is its sampler for this mean count,
        # ``bm.random.binomial``, drawn the way its update draws it.
        def host_update() -> None:
            p = rate() * bp.share["dt"] / 1e3
            target.value = target.value + bm.random.binomial(n, p, workload.shape).astype(jnp.float32)

        return host_update, lambda: target.value
    from ..host.poisson_input import PoissonInput

    node = PoissonInput(target, n, base, 1.0, impl=impl)

    def update() -> None:
        node.freq = rate()
        try:
            node.update()
        finally:
            node.freq = base

    return update, lambda: target.value


def _per_rate_nodes(impl: str, workload: Workload):
    """One constant-rate input per sweep rate, each on its own Variable."""
    import brainpy.math as bm
    import jax.numpy as jnp

    targets = [bm.Variable(jnp.zeros(workload.shape[1:], jnp.float32)) for _ in workload.sweep_rates()]
    if impl == "host":
        from ..host.compat import original_poisson_input_class

        cls = original_poisson_input_class()
        nodes = [cls(v, workload.num_input, f, 1.0) for v, f in zip(targets, workload.sweep_rates())]
    else:
        from ..host.poisson_input import PoissonInput

        nodes = [
            PoissonInput(v, workload.num_input, f, 1.0, impl=impl) for v, f in zip(targets, workload.sweep_rates())
        ]

    def update() -> None:
        for node in nodes:
            node.update()

    return update, lambda: [v.value for v in targets]


def _sweep_update(impl: str, workload: Workload) -> tuple[Callable[[], None], Callable[[], Any]]:
    """W7: one ``vmap`` of ``poisson_add`` over the sweep's rates (a batched ``p``); the
    host, which has no batched form, runs one constant-rate input per rate."""
    import brainpy.math as bm
    import jax
    import jax.numpy as jnp

    if impl == "host" or (workload.rate == "sweep-calls" and impl not in FLOORS):
        return _per_rate_nodes(impl, workload)
    target = bm.Variable(jnp.zeros(workload.shape, jnp.float32))
    if impl in FLOORS:
        return _update_fn(impl, target, workload, bm.NonBatchingMode()), lambda: target.value
    from ..ops.poisson_add import poisson_add

    rates = jnp.asarray(workload.sweep_rates(), jnp.float32)
    n = workload.num_input

    def update() -> None:
        import brainpy as bp

        keys = jax.random.split(_raw_key(bm.random.split_key()), rates.shape[0])
        ps = rates * bp.share["dt"] / 1e3
        target.value = jax.vmap(lambda x, k, p: poisson_add(x, k, n, p, 1.0, impl=impl))(target.value, keys, ps)

    return update, lambda: target.value


def build_time_varying_case(
    workload: Workload, impl: str, platform: str, steps: int, seed: int = 0
) -> Callable[[], Any]:
    """:func:`build_case` for W6 (``rate="modulated"``) and W7 (``"sweep"``, ``"sweep-calls"``).

    Driven like every other case (``bm.for_loop`` inside ``bm.jit``, ``bp.share`` per
    step); the rate of W6 is computed from ``t`` in every step, so it is traced.
    """
    import brainpy as bp
    import brainpy.math as bm
    import jax.numpy as jnp

    dt = workload.dt
    with _on(platform):
        bm.random.seed(seed)
        previous_dt = bm.get_dt()
        bm.set_dt(dt)
        try:
            if workload.rate == "modulated":
                update, value = _modulated_update(impl, workload)
            elif workload.rate in ("sweep", "sweep-calls"):
                update, value = _sweep_update(impl, workload)
            else:
                raise ValueError(f"unknown rate kind {workload.rate!r} of workload {workload.id}")
        finally:
            bm.set_dt(previous_dt)

        def step(i):
            bp.share.save(i=i, t=i * dt, dt=dt)
            update()

        @bm.jit
        def run_steps():
            bm.for_loop(step, jnp.arange(steps), progress_bar=False)
            return value()

    def call():
        with _on(platform):
            return run_steps()

    return call
