"""Microbenchmark of the native CPU kernel ``bpp_poisson_add`` (called directly through
``ffi_call``) against the RNG floor: ``jax.random.bits`` of the same shape, in the same
jitted ``lax.fori_loop``.

    python benchmarks/cpu_kernel.py                 # W1, W3, W5 (10^7), all threads
    python benchmarks/cpu_kernel.py --workloads W1,W2,W3,W4,W5
    python benchmarks/cpu_kernel.py --threads 1,2   # also 1- and 2-thread runs of each workload
    python benchmarks/cpu_kernel.py --json out.json

The workloads are :data:`brainpy_poisson_plugin.bench.workloads.WORKLOADS` (the full-size
CPU table; a batched workload runs as one flat target of the same size). The thread count
of the fused kernel is capped with ``BRAINPY_POISSON_NUM_THREADS``, which the library reads
once per process, so every thread setting runs in a subprocess.
Reports ns per element per step (steady state, best of ``--repeats``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from brainpy_poisson_plugin.bench.workloads import WORKLOADS  # the one table of W1-W5 (no JAX import)


def _measure(fn, args, steps, repeats):
    import jax

    jax.block_until_ready(fn(*args))  # compile + warm up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t0)
    return best / steps


def run_one(workload: str, steps: int, repeats: int, which: tuple[str, ...]) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax import lax

    from brainpy_poisson_plugin.ops import native
    from brainpy_poisson_plugin.ops._jax_compat import jax_ffi
    from brainpy_poisson_plugin.sampling.tables import binomial_table

    spec = WORKLOADS[workload]
    n, num_input, p = spec.elements, spec.num_input, spec.p  # a batched workload runs as one flat target
    table = binomial_table(num_input, p)
    result = {
        "workload": workload,
        "elements": n,
        "num_input": num_input,
        "p": p,
        "L": table.size,
        "steps": steps,
        "threads_env": os.environ.get("BRAINPY_POISSON_NUM_THREADS", ""),
    }

    if "fused" in which:
        if not native.available("cpu"):
            raise SystemExit(f"native CPU kernel unavailable: {native.load_error()}")
        th = jnp.asarray(table.words())
        inc = jnp.asarray((np.float32(0.1) * (table.k0 + np.arange(table.size + 1))).astype(np.float32))
        lay = jnp.asarray(np.array([[0], [n]], np.int32))
        call = jax_ffi.ffi_call(
            native.TARGET_NAME, jax.ShapeDtypeStruct((n,), jnp.float32), input_output_aliases={0: 0}
        )

        @jax.jit
        def fused(x):
            def body(i, x):
                key = jnp.stack([i.astype(jnp.uint32), jnp.uint32(12345)])
                return call(x, key, th, inc, lay)

            return lax.fori_loop(0, steps, body, x)

        result["fused_ns"] = _measure(fused, (jnp.zeros((n,), jnp.float32),), steps, repeats) / n * 1e9

    if "bits" in which:

        @jax.jit
        def bits(x, key):
            def body(i, x):
                return jax.random.bits(jax.random.fold_in(key, i), (n,), jnp.uint32)

            return lax.fori_loop(0, steps, body, x)

        result["bits_ns"] = (
            _measure(bits, (jnp.zeros((n,), jnp.uint32), jax.random.PRNGKey(0)), steps, repeats) / n * 1e9
        )
    if "fused_ns" in result and "bits_ns" in result:
        result["fused_over_bits"] = result["fused_ns"] / result["bits_ns"]
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workloads", default="W1,W3,W5")
    ap.add_argument("--threads", default="", help="comma-separated thread caps for a scaling run of each workload")
    ap.add_argument("--steps", type=int, default=0, help="steps per timed loop (default: ~10^8 elements)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default="")
    ap.add_argument("--_child", default="", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    def steps_for(w):
        return args.steps or max(10, int(1e8 // WORKLOADS[w].elements))

    if args._child:
        w, which = args._child.split(":")
        print(json.dumps(run_one(w, steps_for(w), args.repeats, tuple(which.split("+")))))
        return 0

    def child(w, which, threads=None):
        env = dict(os.environ)
        if threads is not None:
            env["BRAINPY_POISSON_NUM_THREADS"] = str(threads)
        cmd = [sys.executable, __file__, "--_child", f"{w}:{which}", "--repeats", str(args.repeats)]
        if args.steps:
            cmd += ["--steps", str(args.steps)]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    results = {"cpu_count": os.cpu_count(), "workloads": [], "scaling": []}
    for w in args.workloads.split(","):
        r = child(w, "fused+bits")
        results["workloads"].append(r)
        print(
            f"{w}: n={r['elements']:>10,d} L={r['L']:3d}  fused {r['fused_ns']:.3f} ns/elem   "
            f"random.bits {r['bits_ns']:.3f} ns/elem   fused/bits {r['fused_over_bits']:.3f}",
            flush=True,
        )
    for w in args.workloads.split(",") if args.threads else []:
        base = None
        for t in args.threads.split(","):
            r = child(w, "fused", int(t))
            base = base or r["fused_ns"]
            r["speedup_vs_first"] = base / r["fused_ns"]
            results["scaling"].append(r)
            print(
                f"{w} threads={t}: fused {r['fused_ns']:.3f} ns/elem  speed-up {r['speedup_vs_first']:.2f}x", flush=True
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
