#!/usr/bin/env bash
# GPU check of brainpy-poisson-plugin's CUDA kernel: build, bit-identity tests, benchmark.
#
# Run from the repository root on a GPU machine (written for one NVIDIA H200 with JAX 0.11
# and CUDA 13 preinstalled system-wide, no BrainPy, no internet):
#
#     OUT=/path/to/results bash benchmarks/gpu_check.sh
#
# Needs there: python3 with jax + a CUDA jaxlib plugin, numpy, scipy, pytest; nvcc (CUDA 12.x
# or 13.x, on PATH or in /usr/local/cuda/bin); cmake >= 3.24 and ninja (executables or the
# pip packages); scikit-build-core >= 0.10. The H200 image here has all of them.
# Anything missing can be carried as wheels: put them in shared/wheels (or the folder named
# by BPP_WHEELS) and they are installed first with --no-index --no-deps into a private
# folder. Typical carry: scikit_build_core (+ pathspec, packaging), cmake, ninja.
#
# Steps, each under its own `timeout`, total well under 8 minutes:
#   1. environment report                         -> $OUT/env.log
#   2. pip install --no-build-isolation --no-deps, CUDA forced on (BPP_CUDA=ON), from a
#      copy of the tree into a private --target folder -> $OUT/build.log
#   3. pytest tests/test_gpu.py (CUDA vs numpy oracle and vs the CPU custom call, f16/bf16/
#      f32/f64) and tests/test_native_kernel.py (the CPU kernel)  -> $OUT/pytest.log
#   4. benchmark: W5 at 10^8 f32 (ns/neuron, bandwidth at 8 bytes/neuron vs a measured
#      v + c copy loop), other dtypes, the RNG floor, and at 10^7 the ratio to a host-like
#      step v + w * jax.random.binomial(key, n, p, shape)  -> $OUT/gpu_bench.json, .log
#   5. $OUT/summary.json (return codes, times), also printed.
set -u -o pipefail

REPO=$(pwd)
OUT=${OUT:-$REPO/gpu_check_out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
WORK=${BPP_WORK:-/tmp/bpp_gpu_check}
SITE="$WORK/site"
WHEELS=${BPP_WHEELS:-$REPO/shared/wheels}
T0=$(date +%s)
LOG="$OUT/gpu_check.log"
: >"$LOG"
log() { echo "[gpu_check +$(($(date +%s) - T0))s] $*" | tee -a "$LOG"; }
declare -A RC DUR

step() {  # step NAME TIMEOUT_S LOGFILE COMMAND...
  local name=$1 limit=$2 logfile=$3
  shift 3
  local t=$(date +%s)
  log "step $name (limit ${limit}s)"
  timeout --kill-after=10 "$limit" "$@" >"$logfile" 2>&1
  RC[$name]=$?
  DUR[$name]=$(($(date +%s) - t))
  log "step $name: rc=${RC[$name]} in ${DUR[$name]}s"
  tail -n 15 "$logfile" | sed 's/^/    /' | tee -a "$LOG"
}

rm -rf "$WORK"
mkdir -p "$WORK" "$SITE"
if [ ! -x "$(command -v nvcc)" ] && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi
export PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_PREALLOCATE=false
export PYTEST_DISABLE_PLUGIN_AUTOLOAD=1   # no third-party (or this package's) pytest plugins

# ---- 1. environment ----------------------------------------------------------------
step env 90 "$OUT/env.log" bash -c "
  set -x; uname -a; nproc; nvidia-smi; command -v nvcc cmake ninja; nvcc --version
  $PY -c 'import sys, jax, jaxlib, numpy; print(sys.version); print(jax.__version__, jaxlib.__version__, numpy.__version__); print(jax.devices())'
  $PY -m pip --version; $PY -c 'import scikit_build_core as s; print(\"scikit-build-core\", s.__version__)'
"

# ---- optional carried wheels ---------------------------------------------------------
if compgen -G "$WHEELS/*.whl" >/dev/null; then
  log "installing carried wheels from $WHEELS"
  timeout 120 "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$WORK/deps" "$WHEELS"/*.whl \
    >>"$LOG" 2>&1 || log "WARNING: installing carried wheels failed"
  export PYTHONPATH="$WORK/deps${PYTHONPATH:+:$PYTHONPATH}"
  export PATH="$WORK/deps/bin:$PATH"
fi

# ---- 2. build ------------------------------------------------------------------------
mkdir -p "$WORK/src"
tar -C "$REPO" --exclude=./build --exclude=./.git --exclude='./.venv*' --exclude=./gpu_check_out \
  --exclude=./shared -cf - . | tar -C "$WORK/src" -xf -
[ -f "$WORK/src/README.md" ] || echo "# brainpy-poisson-plugin" >"$WORK/src/README.md"
step build 240 "$OUT/build.log" "$PY" -m pip install -v --no-build-isolation --no-deps --no-compile \
  --target "$SITE" -C cmake.define.BPP_CUDA=ON -C build-dir="$WORK/build" "$WORK/src"
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
ls -l "$SITE/brainpy_poisson_plugin/_native/" >>"$LOG" 2>&1

# ---- 3. tests ------------------------------------------------------------------------
# Run from tests/ (as the Makefile does) so the installed package, not the source tree,
# is imported.
step tests 200 "$OUT/pytest.log" bash -c "cd '$REPO/tests' && '$PY' -m pytest -c '$REPO/pyproject.toml' \
  -p no:cacheprovider -q -rs test_gpu.py test_native_kernel.py"

# ---- 4. benchmark --------------------------------------------------------------------
cat >"$WORK/gpu_bench.py" <<'PYEOF'
import json, os, sys, time

import numpy as np
import jax
import jax.numpy as jnp
from jax import lax

from brainpy_poisson_plugin.ops import native
from brainpy_poisson_plugin.ops._jax_compat import jax_ffi
from brainpy_poisson_plugin.sampling.tables import binomial_table

out_dir = sys.argv[1]
status = native.load()
res = {"jax": jax.__version__, "devices": [str(d) for d in jax.devices()], "native": status,
       "results": {}}
print(json.dumps({k: res[k] for k in ("jax", "devices", "native")}), flush=True)
if status.get("cuda") != "registered":
    raise SystemExit(f"CUDA kernel not registered: {status}, {native.load_error()}")
gpu = jax.devices("gpu")[0]
res["device_kind"] = gpu.device_kind
NUM_INPUT, P, W = 1000, 0.001, 0.1
table = binomial_table(NUM_INPUT, P)


def save():
    with open(os.path.join(out_dir, "gpu_bench.json"), "w") as f:
        json.dump(res, f, indent=1)


def loop_timer(make_body, x0, steps, repeats=3):
    """Best time per step of a jitted fori_loop with a traced trip count (no unrolling,
    no fusion across steps); the carry is donated, so updates are in place."""
    run = jax.jit(lambda x, n: lax.fori_loop(0, n, make_body, x), donate_argnums=0)
    x = jax.block_until_ready(run(x0, jnp.int32(2)))
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        x = jax.block_until_ready(run(x, jnp.int32(steps)))
        best = min(best, time.perf_counter() - t)
    del x
    return best / steps


def fused_body(n, dtype):
    cdt = jnp.float64 if dtype == jnp.float64 else jnp.float32
    th = jax.device_put(table.words(), gpu)
    inc = jax.device_put((np.asarray(W, cdt) * (table.k0 + np.arange(table.size + 1))).astype(cdt), gpu)
    lay = jax.device_put(np.array([[0], [n]], np.int32), gpu)
    call = jax_ffi.ffi_call(native.TARGET_NAME, jax.ShapeDtypeStruct((n,), dtype), input_output_aliases={0: 0})

    def body(i, x):
        return call(x, jnp.stack([i.astype(jnp.uint32), jnp.uint32(2024)]), th, inc, lay)
    return body


def record(name, seconds_per_step, n, bytes_per_elem=None):
    r = {"n": n, "ms_per_step": seconds_per_step * 1e3, "ns_per_neuron": seconds_per_step / n * 1e9}
    if bytes_per_elem:
        r["GB_per_s"] = bytes_per_elem * n / seconds_per_step / 1e9
    res["results"][name] = r
    print(name, json.dumps(r), flush=True)
    save()
    return r


with jax.default_device(gpu):
    N8, N7 = 10**8, 10**7
    # memory floor: v + c (read + write 4 bytes per element), and jnp.copy-like traffic
    copy = record("copy_v_plus_c_1e8_f32", loop_timer(lambda i, x: x + jnp.float32(1e-3),
                                                        jnp.zeros((N8,), jnp.float32), 100), N8, 8)
    fused = record("fused_W5_1e8_f32", loop_timer(fused_body(N8, jnp.float32),
                                                  jnp.zeros((N8,), jnp.float32), 100), N8, 8)
    fused["fraction_of_copy_bandwidth"] = fused["GB_per_s"] / copy["GB_per_s"]
    for dt, nb in ((jnp.bfloat16, 4), (jnp.float16, 4)):
        record(f"fused_W5_1e8_{jnp.dtype(dt).name}", loop_timer(fused_body(N8, dt), jnp.zeros((N8,), dt), 100), N8, nb)
    key = jax.random.PRNGKey(0)
    record("rng_floor_random_bits_1e8_u32", loop_timer(
        lambda i, x: x ^ jax.random.bits(jax.random.fold_in(key, i), (N8,), jnp.uint32),
        jnp.zeros((N8,), jnp.uint32), 50), N8, 8)
    f7 = record("fused_W5_1e7_f32", loop_timer(fused_body(N7, jnp.float32), jnp.zeros((N7,), jnp.float32), 200), N7, 8)

    def host_body(i, v):
        k = jax.random.fold_in(key, i)
        return v + W * jax.random.binomial(k, NUM_INPUT, P, (N7,), dtype=jnp.float32)
    h7 = record("host_like_binomial_1e7_f32", loop_timer(host_body, jnp.zeros((N7,), jnp.float32), 10), N7)
    res["speedup_fused_vs_host_like_1e7"] = h7["ns_per_neuron"] / f7["ns_per_neuron"]
    try:
        from brainpy_poisson_plugin.sampling.reference import reference_poisson_add
        th = jax.device_put(table.words(), gpu)
        inc = jax.device_put((np.float32(W) * (table.k0 + np.arange(table.size + 1))).astype(np.float32), gpu)
        lay = jax.device_put(np.array([[0], [N7], ], np.int32).reshape(2, 1), gpu)
        r7 = record("reference_W5_1e7_f32", loop_timer(
            lambda i, x: reference_poisson_add(x, jnp.stack([i.astype(jnp.uint32), jnp.uint32(2024)]), th, inc, lay),
            jnp.zeros((N7,), jnp.float32), 20), N7)
        res["speedup_fused_vs_reference_1e7"] = r7["ns_per_neuron"] / f7["ns_per_neuron"]
    except Exception as exc:  # noqa: BLE001 - the reference is someone else's code; report only
        res["reference_error"] = repr(exc)
    save()
print(json.dumps(res, indent=1))
PYEOF
step bench 180 "$OUT/gpu_bench.log" bash -c "cd '$WORK' && '$PY' gpu_bench.py '$OUT'"

# ---- 5. summary ----------------------------------------------------------------------
"$PY" - "$OUT" <<PYEOF | tee -a "$LOG"
import json, os, sys
out = sys.argv[1]
summary = {"rc": {"env": ${RC[env]:-null}, "build": ${RC[build]:-null}, "tests": ${RC[tests]:-null},
                  "bench": ${RC[bench]:-null}},
           "seconds": {"env": ${DUR[env]:-null}, "build": ${DUR[build]:-null}, "tests": ${DUR[tests]:-null},
                       "bench": ${DUR[bench]:-null}, "total": $(($(date +%s) - T0))}}
tail = open(os.path.join(out, "pytest.log")).read().strip().splitlines()[-3:] if os.path.exists(os.path.join(out, "pytest.log")) else []
summary["pytest_tail"] = tail
try:
    summary["bench"] = json.load(open(os.path.join(out, "gpu_bench.json")))
except Exception as exc:
    summary["bench"] = repr(exc)
json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=1)
print(json.dumps(summary, indent=1))
PYEOF
log "done"
ok=1
for s in build tests bench; do [ "${RC[$s]:-1}" = 0 ] || ok=0; done
[ $ok = 1 ]
