"""Program run by test_sharding.py in a fresh process with 4 forced CPU devices.

``python shard_map_cases.py OUT.npz``: computes every case under ``shard_map`` (and
``pmap``) and on one device, and saves ``<case>/sharded`` and ``<case>/one`` arrays, plus
``<case>/error`` (the exception's type and message) for the cases that must be refused,
to ``OUT.npz``. The test compares them; nothing is judged here.
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from brainpy_poisson_plugin import poisson_add, shard_map_block
from brainpy_poisson_plugin.ops._jax_compat import shard_map, varying_axes

KEY = jax.random.key(2024)
N, PROB, W = 1000, 0.01, 1.0
out: dict[str, np.ndarray] = {}


def mesh_of(shape, names):
    return Mesh(np.array(jax.devices()[: int(np.prod(shape))]).reshape(shape), names)


def placed(impl, spec):
    def body(t):
        return poisson_add(t, KEY, N, PROB, W, impl=impl, block=shard_map_block(spec, t.shape))

    return body


def record(name, sharded, one):
    out[f"{name}/sharded"] = np.asarray(sharded)
    out[f"{name}/one"] = np.asarray(one)


def record_error(name, fn):
    try:
        jax.block_until_ready(fn())
    except Exception as e:
        out[f"{name}/error"] = np.array(f"{type(e).__name__}: {e}")
    else:
        out[f"{name}/error"] = np.array("")


# name, global shape, mesh shape, mesh axis names, partition spec of the target
CASES = [
    ("1d-mesh rows", (8, 1000), (4,), ("x",), P("x")),
    ("1d-mesh cols", (8, 1000), (4,), ("x",), P(None, "x")),
    ("1d-mesh flat", (4000,), (4,), ("x",), P("x")),
    ("2d-mesh both dims", (8, 1000), (2, 2), ("x", "y"), P("x", "y")),
    ("2d-mesh batch dim sharded, x replicated", (8, 1000), (2, 2), ("x", "y"), P("y")),
    ("2d-mesh dim over two axes", (4000,), (2, 2), ("x", "y"), P(("x", "y"))),
    ("2d-mesh dim over two axes, minor first", (6, 400), (2, 2), ("x", "y"), P(None, ("y", "x"))),
    ("2d-mesh rank 3", (4, 6, 20), (2, 2), ("x", "y"), P(None, "y", "x")),
    ("2d-mesh replicated target, explicit block", (8, 100), (2, 2), ("x", "y"), P()),
    ("2-device sub-mesh", (6, 10), (2,), ("x",), P("x")),
    ("0-d target", (), (4,), ("x",), P()),
]

for impl in ("reference", "auto"):
    # every case with the fused kernel (what runs by default); a few with the reference
    for name, shape, mshape, names, spec in CASES if impl == "auto" else CASES[3:6]:
        mesh = mesh_of(mshape, names)
        x = jnp.zeros(shape, jnp.float32)
        f = jax.jit(shard_map(placed(impl, spec), mesh=mesh, in_specs=spec, out_specs=spec))
        record(f"{impl}: {name}", f(x), poisson_add(x, KEY, N, PROB, W, impl=impl))

    # A target that is the same on every device, no block: allowed where JAX shows it
    # to be replicated (check_vma), refused where it cannot (check_vma=False / old jax).
    mesh = mesh_of((2, 2), ("x", "y"))
    x = jnp.zeros((8, 100), jnp.float32)

    def unplaced(t, impl=impl):
        return poisson_add(t, KEY, N, PROB, W, impl=impl)

    f = jax.jit(shard_map(unplaced, mesh=mesh, in_specs=P(), out_specs=P()))
    one = poisson_add(x, KEY, N, PROB, W, impl=impl)
    try:
        record(f"{impl}: replicated target, no block", f(x), one)
    except ValueError as e:  # refused: only right where the type does not show replication
        out[f"{impl}: replicated target, no block/refused"] = np.array(str(e))

    # vmap over keys inside shard_map, with a block: each key's row equals one device's
    keys = jax.random.split(KEY, 3)
    mesh1 = mesh_of((4,), ("x",))
    xv = jnp.zeros((40,), jnp.float32)

    def per_key(t, impl=impl, keys=keys):
        block = shard_map_block(P("x"), t.shape)
        return jax.vmap(lambda one_key: poisson_add(t, one_key, N, PROB, W, impl=impl, block=block))(keys)

    f = jax.jit(shard_map(per_key, mesh=mesh1, in_specs=P("x"), out_specs=P(None, "x")))
    one = jnp.stack([poisson_add(xv, k, N, PROB, W, impl=impl) for k in keys])
    record(f"{impl}: vmap over keys in shard_map", f(xv), one)

    # the weight tangent (the counts) inside shard_map: the custom JVP keeps the block
    def counts(t, impl=impl):
        block = shard_map_block(P("x"), t.shape)
        return jax.jvp(lambda w: poisson_add(t, KEY, N, PROB, w, impl=impl, block=block), (1.0,), (1.0,))[1]

    f = jax.jit(shard_map(counts, mesh=mesh1, in_specs=P("x"), out_specs=P("x")))
    record(
        f"{impl}: weight tangent in shard_map",
        f(xv),
        jax.jvp(lambda w, xv=xv, impl=impl: poisson_add(xv, KEY, N, PROB, w, impl=impl), (1.0,), (1.0,))[1],
    )

    # pmap: the same helper with pmap's axis name
    xp = jnp.zeros((4, 250), jnp.float32)
    f = jax.pmap(
        lambda t, impl=impl: poisson_add(t, KEY, N, PROB, W, impl=impl, block=shard_map_block(P("i"), t.shape)),
        axis_name="i",
    )
    record(f"{impl}: pmap", f(xp), poisson_add(xp.reshape(-1), KEY, N, PROB, W, impl=impl).reshape(4, 250))

# --- calls that must be refused ------------------------------------------------------------
mesh = mesh_of((4,), ("x",))
x = jnp.zeros((8, 1000), jnp.float32)


def sharded_no_block(t):
    return poisson_add(t, KEY, N, PROB, W)


record_error("no block", lambda: jax.jit(shard_map(sharded_no_block, mesh=mesh, in_specs=P("x"), out_specs=P("x")))(x))
record_error(
    "no block, check off",
    lambda: jax.jit(shard_map(sharded_no_block, mesh=mesh, in_specs=P("x"), out_specs=P("x"), check_vma=False))(x),
)
record_error(
    "replicated, no block, check off",
    lambda: jax.jit(shard_map(sharded_no_block, mesh=mesh, in_specs=P(), out_specs=P(), check_vma=False))(x),
)
record_error("pmap, no block", lambda: jax.pmap(sharded_no_block, axis_name="i")(jnp.zeros((4, 10))))

# a jaxpr traced outside and evaluated inside shard_map: refused when lowering
jaxpr = jax.make_jaxpr(sharded_no_block)(jnp.zeros((2, 1000), jnp.float32))


def via_jaxpr(t):
    return jax.core.eval_jaxpr(jaxpr.jaxpr, jaxpr.consts, t)[0]


record_error(
    "jaxpr from outside",
    lambda: jax.jit(shard_map(via_jaxpr, mesh=mesh, in_specs=P("x"), out_specs=P("x"), check_vma=False))(x),
)


# vmap adds an axis that the block does not place: refused when lowering
def vmapped_block(t):
    return jax.vmap(lambda row: poisson_add(row, KEY, N, PROB, W, block=shard_map_block(P("x"), row.shape)))(t)


record_error(
    "vmap over a placed call",
    lambda: jax.jit(shard_map(vmapped_block, mesh=mesh, in_specs=P(None, "x"), out_specs=P(None, "x")))(x),
)
record_error("helper outside shard_map", lambda: shard_map_block(P("x"), (4,)))

out["devices"] = np.array(jax.device_count())
seen = []


def probe(t):
    seen.append(varying_axes(t) is not None)
    return t


jax.jit(shard_map(probe, mesh=mesh, in_specs=P("x"), out_specs=P("x")))(jnp.zeros(4))
out["vma_known"] = np.array(seen[0])

# --- PoissonInput updated inside a user's shard_mapped step ---------------------------------
import brainpy as bp
import brainpy.math as bm

from brainpy_poisson_plugin import PoissonInput

STEPS, NEURONS = 3, 64
bp.share.save(dt=0.1, t=0.0, i=0)
whole = bm.Variable(jnp.zeros(NEURONS))
reference_node = PoissonInput(whole, 1000, 10.0, 0.5, seed=7)
for _ in range(STEPS):
    reference_node.update()
local = bm.Variable(jnp.zeros(NEURONS // 4))
node = PoissonInput(local, 1000, 10.0, 0.5, seed=7, shard_map_spec=P("x"))
plain = PoissonInput(local, 1000, 10.0, 0.5, seed=7)


def step_with(pi):
    # The state goes in and out explicitly: shard_map sees arrays, not BrainPy Variables.
    def step(v, rng_step):
        local.value, pi.rng_step.value = v, rng_step
        pi.update()
        return local.value, pi.rng_step.value

    return jax.jit(shard_map(step, mesh=mesh, in_specs=(P("x"), P()), out_specs=(P("x"), P())))


def plain_step(v):
    local.value = v  # the node's own step counter stays concrete unless update advances it
    plain.update()
    return local.value


f = step_with(node)
v, rng_step = jnp.zeros(NEURONS), jnp.zeros((), jnp.uint32)
for _ in range(STEPS):
    v, rng_step = f(v, rng_step)
local.value, node.rng_step.value = jnp.zeros(NEURONS // 4), jnp.zeros((), jnp.uint32)
record("PoissonInput in shard_map", v, whole.value)
record_error(
    "PoissonInput in shard_map without shard_map_spec",
    lambda: jax.jit(shard_map(plain_step, mesh=mesh, in_specs=P("x"), out_specs=P("x")))(v),
)
local.value = jnp.zeros(NEURONS // 4)
out["PoissonInput refused: rng step afterwards"] = np.asarray(plain.rng_step.value)

np.savez(sys.argv[1], **out)
