"""The CUDA ``bpp_poisson_add`` kernel: bit-identical to the numpy oracle of the contract
(tests/test_native_kernel.py) and to the CPU custom call, for f16, bf16, f32 and f64.

Skipped (with the reason) where JAX has no CUDA device. Where it has one, a CUDA library
that is missing or failed to load is a failure, not a skip. Run by benchmarks/gpu_check.sh.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from brainpy_poisson_plugin.ops import native  # noqa: E402
from brainpy_poisson_plugin.ops._jax_compat import jax_ffi  # noqa: E402

from test_native_kernel import (  # noqa: E402  (the oracle and helpers; tests/ is on sys.path)
    U64_MAX,
    _x64,
    assert_bits_equal,
    binomial_thresholds,
    layout_of,
    make_case,
    np_poisson_add,
    np_words,
    rows,
)

pytestmark = pytest.mark.gpu


def _gpu_devices():
    try:
        return [d for d in jax.devices("gpu") if d.platform in ("gpu", "cuda")]
    except Exception:  # noqa: BLE001 - no GPU backend in this jaxlib
        return []


_GPUS = _gpu_devices()
if not _GPUS:
    pytest.skip("no CUDA device visible to JAX (the CUDA kernel is tested on a GPU machine: "
                "benchmarks/gpu_check.sh)", allow_module_level=True)

GPU = _GPUS[0]
CPU = jax.devices("cpu")[0]


@pytest.fixture(scope="module", autouse=True)
def _cuda_registered():
    status = native.load()
    assert status.get("cuda") == "registered", (
        f"a CUDA device is present but the CUDA kernel is not registered: {status} "
        f"(libraries: {native.library_paths()}; error: {native.load_error()})"
    )


def _dtype(name):
    if name == "bfloat16":
        return jnp.bfloat16
    return np.dtype(name)


def call_on(device, target, key, thresholds64, increments, origin=None, gdims=None, alias=True):
    """One ``bpp_poisson_add`` call with every operand on ``device``."""
    target = np.asarray(target)
    put = lambda x: jax.device_put(np.asarray(x), device)  # noqa: E731
    call = jax_ffi.ffi_call(native.TARGET_NAME, jax.ShapeDtypeStruct(target.shape, target.dtype),
                            input_output_aliases={0: 0} if alias else {})
    out = jax.jit(call)(put(target), put(np.asarray(key, np.uint32)), put(rows(thresholds64)),
                        put(increments), put(layout_of(target.shape, origin, gdims)))
    assert out.devices() == {device}
    return np.asarray(out)


def _increments(dtype, k0, L, weight=0.37):
    cdt = np.float64 if np.dtype(dtype) == np.float64 else np.float32
    return (cdt(weight) * (k0 + np.arange(L + 1))).astype(cdt)


TABLES = {
    # name: (k0, uint64 thresholds): L = 0, realistic small (L = 21, 10), medium (in shared
    # memory), and large (read from global memory)
    "L0": (0, np.zeros(0, np.uint64)),
    "W1": binomial_thresholds(1000, 0.001),
    "W3": binomial_thresholds(100, 0.0005),
    "mean20": binomial_thresholds(10_000, 0.002),
    "L2000": (0, make_case(np.random.default_rng(1), 2000)[0]),
    "L6000": (0, make_case(np.random.default_rng(2), 6000)[0]),
    "L40000": (0, make_case(np.random.default_rng(3), 40_000)[0]),
}
SHAPES = [(), (1,), (3,), (1000,), (257, 33), (1_000_003,)]
DTYPES = ["float16", "bfloat16", "float32", "float64"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("table", list(TABLES))
def test_matches_oracle(dtype, table):
    k0, t = TABLES[table]
    rng = np.random.default_rng(zlib.crc32(f"{dtype}/{table}".encode()))
    key = rng.integers(0, 2**32, size=2, dtype=np.uint32)
    with _x64() if dtype == "float64" else _nullcontext():
        inc = _increments(dtype, k0, t.size)
        for shape in SHAPES if table in ("W1", "L6000") else SHAPES[:-1]:
            target = rng.standard_normal(shape).astype(_dtype(dtype))
            got = call_on(GPU, target, key, t, inc)
            assert_bits_equal(got, np_poisson_add(target, key, t, inc))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gpu_equals_cpu_custom_call(dtype):
    k0, t = TABLES["W1"]
    rng = np.random.default_rng(5)
    key = np.array([0x1234, 0xFEDC], np.uint32)
    with _x64() if dtype == "float64" else _nullcontext():
        inc = _increments(dtype, k0, t.size)
        target = rng.standard_normal((3, 100_001)).astype(dtype)
        assert_bits_equal(call_on(GPU, target, key, t, inc), call_on(CPU, target, key, t, inc))


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_increments_and_signed_zero(dtype):
    rng = np.random.default_rng(6)
    key = np.array([9, 10], np.uint32)
    t, _ = make_case(rng, 10)
    with _x64() if dtype == "float64" else _nullcontext():
        inc = _increments(dtype, 0, t.size)
        inc[[0, 3, 7]] = 0
        inc[3] = -0.0
        target = rng.standard_normal(50_000).astype(_dtype(dtype))
        target[::3] = -0.0
        target[1::7] = np.nan
        got = call_on(GPU, target, key, t, inc)
        assert_bits_equal(got, np_poisson_add(target, key, t, inc))
        assert_bits_equal(call_on(GPU, target, key, t, np.zeros_like(inc)), target)


@pytest.mark.parametrize(
    "gshape,origin,lshape",
    [((6, 7, 5), (2, 3, 0), (3, 4, 5)), ((6, 7, 5), (1, 0, 2), (4, 7, 3)), ((64, 10_000), (16, 0), (16, 10_000)),
     ((40, 3001), (0, 1000), (40, 1000)), ((9, 1, 11), (3, 0, 4), (5, 1, 6))],
)
@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_block_of_global_array(gshape, origin, lshape, dtype):
    rng = np.random.default_rng(7)
    key = np.array([0xABCDEF01, 0x2468ACE0], np.uint32)
    k0, t = TABLES["W1"]
    inc = _increments(dtype, k0, t.size)
    whole = rng.standard_normal(gshape).astype(_dtype(dtype))
    full = call_on(GPU, whole, key, t, inc)
    sl = tuple(slice(o, o + n) for o, n in zip(origin, lshape))
    block = np.ascontiguousarray(whole[sl])
    assert_bits_equal(call_on(GPU, block, key, t, inc, origin, gshape), full[sl])


def test_thresholds_at_element_words():
    rng = np.random.default_rng(8)
    key = np.array([0x0BADF00D, 17], np.uint32)
    n = 20_000
    u = np_words(key, (n,))
    picks = u[rng.choice(n, size=6, replace=False)]
    t = np.sort(np.concatenate([picks, picks[:3] + np.uint64(1), picks[3:] - np.uint64(1),
                                np.array([0, U64_MAX], np.uint64)]))
    inc = (np.float32(0.5) * np.arange(t.size + 1) + 1).astype(np.float32)
    target = rng.standard_normal(n).astype(np.float32)
    assert_bits_equal(call_on(GPU, target, key, t, inc), np_poisson_add(target, key, t, inc))


def test_distinct_output_buffer_and_loop():
    k0, t = TABLES["W1"]
    inc = _increments("float32", k0, t.size)
    target = np.random.default_rng(9).standard_normal(100_000).astype(np.float32)
    key = np.array([1, 2], np.uint32)
    assert_bits_equal(call_on(GPU, target, key, t, inc, alias=False), np_poisson_add(target, key, t, inc))

    put = lambda x: jax.device_put(np.asarray(x), GPU)  # noqa: E731
    call = jax_ffi.ffi_call(native.TARGET_NAME, jax.ShapeDtypeStruct(target.shape, target.dtype),
                            input_output_aliases={0: 0})
    th, ij, lay = put(rows(t)), put(inc), put(layout_of(target.shape))

    @jax.jit
    def steps(x):
        return jax.lax.fori_loop(
            0, 4, lambda i, x: call(x, jnp.stack([jnp.uint32(i), jnp.uint32(77)]), th, ij, lay), x)

    want = target
    for i in range(4):
        want = np_poisson_add(want, np.array([i, 77], np.uint32), t, inc)
    assert_bits_equal(np.asarray(steps(put(target))), want)


def test_unsupported_dtype_is_an_error():
    target = np.zeros(8, np.int32)
    with pytest.raises(Exception, match="CUDA kernel does not support target dtype int32"):
        call_on(GPU, target, np.zeros(2, np.uint32), np.zeros(0, np.uint64), np.zeros(1, np.float32))


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
