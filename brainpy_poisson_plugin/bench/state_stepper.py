"""W8: ``brainpy.state.PoissonInput`` (brainunit target State, Prefetch), host vs plugin.

Both run the same way: one ``brainstate.transform.jit`` around a
``brainstate.transform.for_loop`` over the steps, ``dt`` from ``brainstate.environ``,
each step calling the node's ``update()`` on a ``HiddenState`` in mV. ``host`` is the
host's own class (read from its defining module, so it is the host's even while the
swap is active); ``reference`` / ``fused`` are the plugin's class with that ``impl``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .workloads import Workload

__all__ = ["STATE_IMPLS", "build_state_case", "state_unavailable_reason"]

#: Implementations this stepper serves (the floors run through the classic stepper).
STATE_IMPLS = ("host", "reference", "fused")


def state_unavailable_reason() -> str | None:
    """Why W8 cannot run on this host (no ``brainpy.state``), or ``None``."""
    from ..host.compat import has_state_api

    if has_state_api():
        return None
    import brainpy

    return f"skipped: BrainPy {brainpy.__version__} has no brainpy.state (2.8 or later)"


def build_state_case(workload: Workload, impl: str, platform: str, steps: int, seed: int = 0) -> Callable[[], Any]:
    """A callable running ``steps`` steps of ``impl`` on ``workload``; returns the target's mantissa."""
    import brainstate
    import brainunit as u
    import jax
    import jax.numpy as jnp

    from ..host.compat import original_state_poisson_input_class
    from ..host.state_inputs import PoissonInput

    device = jax.devices(platform)[0]
    dt = workload.dt * u.ms

    class Holder(brainstate.nn.Dynamics):
        def __init__(self) -> None:
            super().__init__(workload.shape)
            self.V = brainstate.HiddenState(jnp.zeros(workload.shape, jnp.float32) * u.mV)

    with jax.default_device(device), brainstate.environ.context(dt=dt):
        brainstate.random.seed(seed)
        holder = Holder()
        args = (holder.prefetch("V"), None, workload.num_input, workload.freq * u.Hz, 1.0 * u.mV)
        if impl == "host":
            node = original_state_poisson_input_class()(*args)
        else:
            node = PoissonInput(*args, impl=impl)

        @brainstate.transform.jit
        def run_steps():
            brainstate.transform.for_loop(lambda i: node.update(), jnp.arange(steps))
            return u.get_mantissa(holder.V.value)

    def call():
        with jax.default_device(device), brainstate.environ.context(dt=dt):
            return run_steps()

    return call
