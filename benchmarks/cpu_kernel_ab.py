"""A/B of two builds of the native CPU kernel, in one process, so that both see the same
machine load: each ``_bpp_cpu`` library is registered under its own FFI target name and
the two are timed alternately (best of ROUNDS), one jitted ``fori_loop`` of steps each.

    cd tests && ../.venv/bin/python ../benchmarks/cpu_kernel_ab.py BEFORE.so AFTER.so W1,W2,W3 [ROUNDS]
    BRAINPY_POISSON_NUM_THREADS=1 ...   # single-threaded (both libraries read it once)

Prints ns per element per step of each and their ratio (after/before).
"""

import ctypes
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from brainpy_poisson_plugin.bench.workloads import WORKLOADS
from brainpy_poisson_plugin.ops._jax_compat import jax_ffi
from brainpy_poisson_plugin.sampling.tables import binomial_table

libs = {"before": sys.argv[1], "after": sys.argv[2]}
for name, path in libs.items():
    lib = ctypes.cdll.LoadLibrary(path)
    jax_ffi.register_ffi_target(f"bpp_{name}", jax_ffi.pycapsule(lib.BppPoissonAddCpu), platform="cpu")
for wl in sys.argv[3].split(","):
    w = WORKLOADS[wl]
    n, ni, p = w.elements, w.num_input, w.p
    t = binomial_table(ni, p)
    th = jnp.asarray(t.words())
    inc = jnp.asarray((0.1 * (t.k0 + np.arange(t.size + 1))).astype(np.float32))
    lay = jnp.array([[0], [n]], jnp.int32)
    steps = max(5, int(2e7 // n))
    fns = {}
    for name in libs:
        call = jax_ffi.ffi_call(f"bpp_{name}", jax.ShapeDtypeStruct((n,), jnp.float32), input_output_aliases={0: 0})

        def loop(x, call=call, th=th, inc=inc, lay=lay, steps=steps):
            def body(i, x):
                return call(x, jnp.stack([i.astype(jnp.uint32), jnp.uint32(7)]), th, inc, lay)

            return lax.fori_loop(0, steps, body, x)

        fns[name] = jax.jit(loop, donate_argnums=0)
    xs = {name: jax.block_until_ready(fns[name](jnp.zeros(n, jnp.float32))) for name in libs}
    best = {name: float("inf") for name in libs}
    for _r in range(int(sys.argv[4]) if len(sys.argv) > 4 else 7):
        for name in libs:
            t0 = time.perf_counter()
            xs[name] = jax.block_until_ready(fns[name](xs[name]))
            best[name] = min(best[name], time.perf_counter() - t0)
    ns = {k: v / steps / n * 1e9 for k, v in best.items()}
    print(
        f"{wl}: n={n:>10,} L={t.size:>3}  before {ns['before']:.3f} ns/elem  after {ns['after']:.3f} ns/elem  "
        f"after/before {ns['after'] / ns['before']:.3f}",
        flush=True,
    )
