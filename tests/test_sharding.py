"""Sharded over 4 (fake CPU) devices, the result equals the one-device result bit for bit
and the compiled program has no all-gather. Runs in a subprocess: the device count is
fixed when JAX starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, os
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    from brainpy_poisson_plugin import poisson_add

    key = jax.random.key(2024)
    results = []
    cases = [
        ((8, 1000), P(None, "x"), (4,), ("x",)),
        ((8, 1000), P("x"), (4,), ("x",)),
        ((8, 1000), P("x", "y"), (2, 2), ("x", "y")),
        ((4, 6, 20), P(None, "y", "x"), (2, 2), ("x", "y")),
        ((4000,), P(("x", "y")), (2, 2), ("x", "y")),
    ]
    for impl in ("reference", "auto"):
        for shape, spec, mesh_shape, names in cases:
            one = poisson_add(jnp.zeros(shape), key, 1000, 0.01, 1.0, impl=impl)
            mesh = Mesh(np.array(jax.devices()).reshape(mesh_shape), names)
            x = jax.device_put(jnp.zeros(shape), NamedSharding(mesh, spec))
            f = jax.jit(lambda x: poisson_add(x, key, 1000, 0.01, 1.0, impl=impl))
            y = f(x)
            hlo = f.lower(x).compile().as_text()
            results.append(dict(
                impl=impl, spec=str(spec),
                equal=bool(np.array_equal(np.asarray(y), np.asarray(one))),
                all_gather="all-gather" in hlo,
                custom_call="bpp_poisson_add" in hlo,
                out_spec=str(y.sharding.spec),
                shards=len(y.addressable_shards),
            ))
    # vmap and grad inside a sharded program
    mesh = Mesh(np.array(jax.devices()), ("x",))
    xb = jax.device_put(jnp.zeros((4, 2000)), NamedSharding(mesh, P(None, "x")))
    keys = jax.random.split(key, 4)
    g = jax.jit(jax.vmap(lambda x, k: poisson_add(x, k, 100, 0.1, 1.0)))
    vm = g(xb, keys)
    ref = jnp.stack([poisson_add(jnp.zeros(2000), k, 100, 0.1, 1.0) for k in keys])
    results.append(dict(impl="vmap", spec="P(None,'x')", equal=bool(np.array_equal(np.asarray(vm), np.asarray(ref))),
                        all_gather="all-gather" in g.lower(xb, keys).compile().as_text(), custom_call=True,
                        out_spec="", shards=4))
    print(json.dumps(dict(devices=jax.device_count(), results=results)))
    """
)


def test_sharded_equals_single_device_without_all_gather():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["devices"] == 4
    for r in report["results"]:
        assert r["equal"], r
        assert not r["all_gather"], r
        if r["impl"] not in ("vmap",) and r["spec"] != "PartitionSpec()":
            assert r["shards"] == 4, r
