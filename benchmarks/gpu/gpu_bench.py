"""GPU benchmark run by benchmarks/gpu_check.sh: ``python gpu_bench.py OUT_DIR``.

W5 at 10^8 float32 neurons through the custom call, and beside it, in the same run:

* the copy bound: a ``v + c`` loop over the same array (8 bytes per neuron moved);
* the integer bound: Threefry-2x32's integer instructions per element (THREEFRY_INT_OPS)
  times the elements, over the device's INT32 rate (multiprocessors x 64 lanes x SM clock);
* the RNG floor (``jax.random.bits``), other dtypes, and at 10^7 the ratio to a host-like
  step (``v + w * jax.random.binomial``), to the plugin's reference and, where BrainPy is
  importable, to the host's own ``PoissonInput``.

Writes OUT_DIR/gpu_bench.json after every measurement (a timeout keeps what was done).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from brainpy_poisson_plugin import poisson_add
from brainpy_poisson_plugin.ops import native

#: Integer instructions of one Threefry-2x32 (20 rounds of add, funnel-shift rotate, xor;
#: 6 key injections of two adds each), the per-element core of the kernel.
THREEFRY_INT_OPS = 20 * 3 + 6 * 2
#: INT32 lanes per multiprocessor on Ampere and Hopper.
INT32_LANES_PER_SM = 64

out_dir = sys.argv[1]
res: dict = {"jax": jax.__version__, "devices": [str(d) for d in jax.devices()], "native": native.load(), "results": {}}
print(json.dumps({k: res[k] for k in ("jax", "devices", "native")}), flush=True)
if res["native"].get("cuda") != "registered":
    raise SystemExit(f"CUDA kernel not registered: {res['native']}, {native.load_error()}")
gpu = jax.devices("gpu")[0]
res["device_kind"] = gpu.device_kind
NUM_INPUT, P, W = 1000, 0.001, 0.1


def save():
    with open(os.path.join(out_dir, "gpu_bench.json"), "w") as f:
        json.dump(res, f, indent=1)


def loop_time(body, x0, steps, repeats=3):
    """Best seconds per step of a jitted fori_loop (traced trip count, donated carry)."""
    run = jax.jit(lambda x, n: lax.fori_loop(0, n, body, x), donate_argnums=0)
    x = jax.block_until_ready(run(x0, jnp.int32(2)))
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        x = jax.block_until_ready(run(x, jnp.int32(steps)))
        best = min(best, time.perf_counter() - t)
    del x
    return best / steps


def record(name, sec, n, bytes_per_elem=None):
    r = {"n": n, "ms_per_step": sec * 1e3, "ns_per_neuron": sec / n * 1e9}
    if bytes_per_elem:
        r["GB_per_s"] = bytes_per_elem * n / sec / 1e9
    res["results"][name] = r
    print(name, json.dumps(r), flush=True)
    save()
    return r


def fused_body(impl):
    def body(i, x):
        return poisson_add(x, jnp.stack([i.astype(jnp.uint32), jnp.uint32(2024)]), NUM_INPUT, P, W, impl=impl)

    return body


def sm_clock_hz():
    try:
        mhz = subprocess.run(
            ["nvidia-smi", "--query-gpu=clocks.max.sm", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.split()[0]
        return float(mhz) * 1e6
    except Exception:
        return None


with jax.default_device(gpu):
    N8, N7 = 10**8, 10**7
    copy = record(
        "copy_v_plus_c_1e8_f32",
        loop_time(lambda i, x: x + jnp.float32(1e-3), jnp.zeros((N8,), jnp.float32), 100),
        N8,
        8,
    )
    fused = record("fused_W5_1e8_f32", loop_time(fused_body("fused"), jnp.zeros((N8,), jnp.float32), 100), N8, 8)
    sms, clock = getattr(gpu, "core_count", None), sm_clock_hz()
    bounds = {"copy_ns_per_neuron": copy["ns_per_neuron"]}
    if sms and clock:
        bounds["int_ns_per_neuron"] = THREEFRY_INT_OPS / (sms * INT32_LANES_PER_SM * clock) * 1e9
        bounds["int_basis"] = (
            f"{THREEFRY_INT_OPS} ops/elem, {sms} SMs x {INT32_LANES_PER_SM} lanes x {clock / 1e6:.0f} MHz"
        )
    # The kernel can be no faster than the slower of the two limits (the larger time).
    bound = max(v for k, v in bounds.items() if k.endswith("ns_per_neuron"))
    bounds["fraction_of_bound"] = bound / fused["ns_per_neuron"]
    res["bounds_1e8"] = bounds
    save()
    for dt in (jnp.bfloat16, jnp.float16):
        record(f"fused_W5_1e8_{jnp.dtype(dt).name}", loop_time(fused_body("fused"), jnp.zeros((N8,), dt), 100), N8, 4)
    key = jax.random.PRNGKey(0)
    record(
        "rng_floor_random_bits_1e8_u32",
        loop_time(
            lambda i, x: x ^ jax.random.bits(jax.random.fold_in(key, i), (N8,), jnp.uint32),
            jnp.zeros((N8,), jnp.uint32),
            50,
        ),
        N8,
        8,
    )
    f7 = record("fused_W5_1e7_f32", loop_time(fused_body("fused"), jnp.zeros((N7,), jnp.float32), 200), N7, 8)
    r7 = record("reference_W5_1e7_f32", loop_time(fused_body("reference"), jnp.zeros((N7,), jnp.float32), 20), N7)
    res["speedup_fused_vs_reference_1e7"] = r7["ns_per_neuron"] / f7["ns_per_neuron"]

    def host_like(i, v):
        k = jax.random.fold_in(key, i)
        return v + W * jax.random.binomial(k, NUM_INPUT, P, (N7,), dtype=jnp.float32)

    h7 = record("host_like_binomial_1e7_f32", loop_time(host_like, jnp.zeros((N7,), jnp.float32), 10), N7)
    res["speedup_fused_vs_host_like_1e7"] = h7["ns_per_neuron"] / f7["ns_per_neuron"]
    save()
    try:  # the host's own PoissonInput (BrainPy carried as wheels)
        import brainpy as bp
        import brainpy.math as bm

        from brainpy_poisson_plugin.host.compat import original_poisson_input_class

        host_cls = original_poisson_input_class()
        v = bm.Variable(jnp.zeros(N7, jnp.float32))
        node = host_cls(v, NUM_INPUT, 10.0, W)

        def host_step(i):
            bp.share.save(t=i * 0.1, i=i, dt=0.1)
            node.update()

        bm.for_loop(host_step, np.arange(2), progress_bar=False)
        jax.block_until_ready(v.value)
        t0 = time.perf_counter()
        bm.for_loop(host_step, np.arange(10), progress_bar=False)
        jax.block_until_ready(v.value)
        hp = record("host_PoissonInput_1e7_f32", (time.perf_counter() - t0) / 10, N7)
        res["speedup_fused_vs_host_PoissonInput_1e7"] = hp["ns_per_neuron"] / f7["ns_per_neuron"]
    except Exception as exc:
        res["host_PoissonInput_error"] = repr(exc)
    save()
print(json.dumps(res, indent=1))
