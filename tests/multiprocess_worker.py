"""Program run by test_multiprocess.py: one process of a 2-process ``jax.distributed`` run
on 127.0.0.1 (2 CPU devices each), or the one-process, one-device reference.

``python multiprocess_worker.py OUT.npz single`` computes the reference;
``python multiprocess_worker.py OUT.npz PORT PROCESS_ID`` is one of the two processes
(process 0 writes ``OUT.npz``). Both compute the same things: a sharded ``poisson_add``
(automatic sharding and shard_map with ``shard_map_block``) and a multi-step BrainPy loop
(``PoissonInput`` on a sharded Variable inside ``bm.for_loop``), gathered on every process.
"""

from __future__ import annotations

import sys

import jax

OUT = sys.argv[1]
SINGLE = sys.argv[2] == "single"
if not SINGLE:
    # jax 0.4.x ignores the forced host device count once distributed; this option does not
    if hasattr(jax.config, "jax_num_cpu_devices"):
        jax.config.update("jax_num_cpu_devices", 2)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{int(sys.argv[2])}",
        num_processes=2,
        process_id=int(sys.argv[3]),
        initialization_timeout=120,
    )

import brainpy as bp
import brainpy.math as bm
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from brainpy_poisson_plugin import PoissonInput, poisson_add, shard_map_block
from brainpy_poisson_plugin.ops._jax_compat import shard_map

KEY = jax.random.key(31)
SHAPE, NEURONS, STEPS = (8, 1000), 4000, 20
out: dict[str, np.ndarray] = {}


def global_zeros(shape, spec):
    """A zero array of ``shape`` laid out by ``spec`` over all processes' devices."""
    if SINGLE:
        return jnp.zeros(shape, jnp.float32)
    sharding = NamedSharding(MESH, spec)
    return jax.make_array_from_callback(shape, sharding, lambda index: np.zeros(shape, np.float32)[index])


def gathered(x) -> np.ndarray:
    return np.asarray(x) if SINGLE else np.asarray(multihost_utils.process_allgather(x, tiled=True))


if not SINGLE:
    counts = (jax.process_count(), jax.device_count(), jax.local_device_count())
    # 2 local devices each; jax 0.4.x gives a distributed CPU process one device only
    assert counts[0] == 2 and counts[1] == 2 * counts[2], f"processes, devices, local devices: {counts}"
    MESH = Mesh(np.array(jax.devices()), ("x",))

# 1. automatic sharding: jit over a sharded array
x = global_zeros(SHAPE, P(None, "x"))
out["jit poisson_add"] = gathered(jax.jit(lambda t: poisson_add(t, KEY, 1000, 0.01, 1.0))(x))

# 2. shard_map with the block helper
if SINGLE:
    out["shard_map poisson_add"] = np.asarray(poisson_add(jnp.zeros(SHAPE), KEY, 1000, 0.01, 1.0))
else:

    def body(t):
        return poisson_add(t, KEY, 1000, 0.01, 1.0, block=shard_map_block(P("x"), t.shape))

    f = jax.jit(shard_map(body, mesh=MESH, in_specs=P("x"), out_specs=P("x")))
    out["shard_map poisson_add"] = gathered(f(global_zeros(SHAPE, P("x"))))

# 3. a BrainPy loop: PoissonInput on a sharded Variable, STEPS steps in bm.for_loop
bp.share.save(dt=0.1, t=0.0, i=0)
v = bm.Variable(global_zeros((NEURONS,), P("x")))
node = PoissonInput(v, 1000, 10.0, 0.25, seed=11)
bm.for_loop(lambda i: node.update(), jnp.arange(STEPS))
out["brainpy for_loop"] = gathered(v.value)
out["processes"] = np.array(jax.process_count())
out["devices"] = np.array(jax.device_count())

if SINGLE or jax.process_index() == 0:
    np.savez(OUT, **out)
if not SINGLE:
    jax.distributed.shutdown()
