"""Explicit use of the plugin, without relying on the automatic swap.

1. The drop-in class: three lines in a BrainPy model.
2. The functional core, ``poisson_add``, for code outside BrainPy's object system.
"""

import brainpy as bp
import brainpy.math as bm
import jax
import jax.numpy as jnp

from brainpy_poisson_plugin import PoissonInput, poisson_add

# --- 1. The drop-in class -----------------------------------------------------------
bm.random.seed(42)
neurons = bp.dyn.LifRef(1000, V_rest=-60.0, V_th=-50.0, V_reset=-60.0, tau=20.0, tau_ref=5.0)
background = PoissonInput(neurons.V, num_input=1000, freq=10.0, weight=0.06)  # impl="auto"
net = bp.DynSysGroup(neurons=neurons, background=background)

runner = bp.DSRunner(net, monitors=["neurons.spike"], progress_bar=False)
runner.run(200.0)
print(f"mean rate with PoissonInput: {runner.mon['neurons.spike'].mean() / bm.get_dt() * 1e3:.1f} Hz")

# --- 2. The functional core ---------------------------------------------------------
# new_v = v + weight * k,  k ~ Binomial(num_input, p) exactly, independently per element.
v = jnp.zeros(5)
key = jax.random.key(0)
new_v = poisson_add(v, key, num_input=1000, p=0.001, weight=0.5)
print("poisson_add:", new_v)

# The same key gives the same bits on any device count and with any implementation:
assert bool(jnp.all(poisson_add(v, key, 1000, 0.001, 0.5, impl="reference") == new_v))


# Inside jit, with a fresh key per step:
@jax.jit
def run(v, key):
    def body(i, v):
        return poisson_add(v, jax.random.fold_in(key, i), 1000, 0.001, 0.5)

    return jax.lax.fori_loop(0, 100, body, v)


print("after 100 steps, mean increment per step:", float(run(v, key).mean()) / 100, "(expected 0.5)")
