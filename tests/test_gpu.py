"""The CUDA ``bpp_poisson_add`` kernel: bit-identical to the numpy oracle of the contract
(tests/test_native_kernel.py), to the CPU custom call and to the pure-JAX reference run on
the GPU, for f16, bf16, f32 and f64; directly through ``ffi_call`` and through the product
path (``poisson_add`` with ``impl="auto"``/``"fused"``, its lowering, vmap, grad, a traced
``p``, 10^8 elements, more than 2**31 float16 elements, ``PoissonInput`` in a BrainPy loop).

Bit identity is the contract's: the same bits for every non-NaN result, NaN where the
reference has NaN (a GPU returns the canonical NaN, the CPU keeps payloads).

Skipped (with the reason) where JAX has no CUDA device. Where it has one, a CUDA library
that is missing or failed to load is a failure, not a skip. Run by benchmarks/gpu_check.sh.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp
from test_native_kernel import (
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

from brainpy_poisson_plugin.ops import native
from brainpy_poisson_plugin.ops._jax_compat import jax_ffi

pytestmark = pytest.mark.gpu


def _gpu_devices():
    try:
        return [d for d in jax.devices("gpu") if d.platform in ("gpu", "cuda")]
    except Exception:
        return []


_GPUS = _gpu_devices()
if not _GPUS:
    pytest.skip(
        "no CUDA device visible to JAX (the CUDA kernel is tested on a GPU machine: benchmarks/gpu_check.sh)",
        allow_module_level=True,
    )

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
    call = jax_ffi.ffi_call(
        native.TARGET_NAME,
        jax.ShapeDtypeStruct(target.shape, target.dtype),
        input_output_aliases={0: 0} if alias else {},
    )
    out = jax.jit(call)(
        put(target),
        put(np.asarray(key, np.uint32)),
        put(rows(thresholds64)),
        put(increments),
        put(layout_of(target.shape, origin, gdims)),
    )
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
    [
        ((6, 7, 5), (2, 3, 0), (3, 4, 5)),
        ((6, 7, 5), (1, 0, 2), (4, 7, 3)),
        ((64, 10_000), (16, 0), (16, 10_000)),
        ((40, 3001), (0, 1000), (40, 1000)),
        ((9, 1, 11), (3, 0, 4), (5, 1, 6)),
    ],
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
    t = np.sort(
        np.concatenate([picks, picks[:3] + np.uint64(1), picks[3:] - np.uint64(1), np.array([0, U64_MAX], np.uint64)])
    )
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
    call = jax_ffi.ffi_call(
        native.TARGET_NAME, jax.ShapeDtypeStruct(target.shape, target.dtype), input_output_aliases={0: 0}
    )
    th, ij, lay = put(rows(t)), put(inc), put(layout_of(target.shape))

    @jax.jit
    def steps(x):
        return jax.lax.fori_loop(0, 4, lambda i, x: call(x, jnp.stack([jnp.uint32(i), jnp.uint32(77)]), th, ij, lay), x)

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


# ---------------------------------------------------------------------------------------
# The product path: poisson_add on GPU arrays, through the lowering
# ---------------------------------------------------------------------------------------

import subprocess
import sys
import textwrap

from bits import assert_same_bits

from brainpy_poisson_plugin import poisson_add
from brainpy_poisson_plugin.ops import lowering
from brainpy_poisson_plugin.sampling.reference import reference_poisson_add


def _on_gpu(x):
    return jax.device_put(x, GPU)


def _key(i=0):
    return _on_gpu(jnp.array([0x5EED + i, 0xC0DE], jnp.uint32))


def _gpu_target(shape, dtype, seed=0):
    return _on_gpu(jnp.asarray(np.random.default_rng(seed).standard_normal(shape).astype(_dtype(dtype))))


def _fused_and_reference(fn, *args):
    fused = jax.jit(lambda *a: fn("fused", *a))(*args)
    ref = jax.jit(lambda *a: fn("reference", *a))(*args)
    assert fused.devices() == {GPU} and ref.devices() == {GPU}
    return np.asarray(fused), np.asarray(ref)


@pytest.mark.parametrize("dtype", DTYPES)
def test_lowering_picks_the_cuda_kernel(dtype):
    assert lowering.uses_fused("cuda", "auto", np.dtype(_dtype(dtype)))
    with _x64() if dtype == "float64" else _nullcontext():
        x = _gpu_target((1000,), dtype)
        hlo = jax.jit(lambda x: poisson_add(x, _key(), 1000, 0.01, 0.5, impl="auto")).lower(x).as_text()
        assert "bpp_poisson_add" in hlo


@pytest.mark.parametrize("impl", ["auto", "fused"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_poisson_add_fused_equals_reference_on_gpu(dtype, impl):
    with _x64() if dtype == "float64" else _nullcontext():
        for shape, n, p in [((100_000,), 1000, 0.01), ((64, 1001), 10_000, 0.002), ((3, 5, 7), 100, 0.5)]:
            x = _gpu_target(shape, dtype, seed=len(shape))
            got = np.asarray(jax.jit(lambda x, n=n, p=p: poisson_add(x, _key(), n, p, 0.25, impl=impl))(x))
            ref = np.asarray(jax.jit(lambda x, n=n, p=p: poisson_add(x, _key(), n, p, 0.25, impl="reference"))(x))
            assert_same_bits(got, ref, f"{shape}")
            assert not np.array_equal(np.asarray(x).astype(np.float32), got.astype(np.float32))


def test_reference_on_gpu_equals_cuda_kernel_direct():
    k0, t = TABLES["mean20"]
    inc = _increments("float32", k0, t.size)
    target = np.random.default_rng(4).standard_normal((257, 999)).astype(np.float32)
    key = np.array([77, 88], np.uint32)
    put = _on_gpu
    ref = jax.jit(reference_poisson_add)(put(target), put(key), put(rows(t)), put(inc), put(layout_of(target.shape)))
    assert ref.devices() == {GPU}
    assert_same_bits(np.asarray(ref), call_on(GPU, target, key, t, inc))


def test_vmap_grad_and_traced_p_on_gpu():
    x = _gpu_target((8, 5000), "float32")
    keys = _on_gpu(jnp.stack([jnp.array([i, 3], jnp.uint32) for i in range(8)]))

    def batched(impl, x, keys):
        return jax.vmap(lambda t, k: poisson_add(t, k, 1000, 0.01, 0.5, impl=impl))(x, keys)

    assert_same_bits(*_fused_and_reference(batched, x, keys))

    def swept(impl, x, ps):  # vmap over rates: a traced, batched p
        return jax.vmap(lambda t, p: poisson_add(t, _key(), 1000, p, 0.5, impl=impl))(x, ps)

    ps = _on_gpu(jnp.linspace(0.001, 0.04, 8, dtype=jnp.float32))
    assert_same_bits(*_fused_and_reference(swept, x, ps))

    def traced_p(impl, x, p):
        return poisson_add(x, _key(), 1000, p, 0.5, impl=impl)

    assert_same_bits(*_fused_and_reference(traced_p, x, _on_gpu(jnp.float32(0.013))))

    def grad_w(impl, x, w):
        return jax.grad(lambda w: jnp.sum(poisson_add(x, _key(), 1000, 0.01, w, impl=impl)))(w)

    fused, ref = _fused_and_reference(grad_w, x, _on_gpu(jnp.float32(0.5)))
    assert_same_bits(fused, ref)
    assert float(fused) > 0  # d/dw sum = total count


def test_bit_check_at_1e8_f32():
    n = 10**8
    x = _on_gpu(jnp.zeros((n,), jnp.float32))
    fused = jax.jit(lambda x: poisson_add(x, _key(5), 1000, 0.001, 0.1, impl="fused"))(x)
    ref = jax.jit(lambda x: poisson_add(x, _key(5), 1000, 0.001, 0.1, impl="reference"))(x)
    same = jax.jit(lambda a, b: jnp.all((a == b) | (jnp.isnan(a) & jnp.isnan(b))))(fused, ref)
    assert bool(same)
    mean = float(jnp.mean(fused.astype(jnp.float64) if fused.dtype == jnp.float64 else fused)) / 0.1
    assert abs(mean - 1.0) < 0.001  # Binomial(1000, 0.001): mean 1, sd of the mean 1e-4


def _free_gpu_bytes():
    stats = GPU.memory_stats() or {}
    return stats.get("bytes_limit", 0) - stats.get("bytes_in_use", 0)


def test_more_than_2_31_float16_elements():
    """A 1-D f16 target of 2**31 + 2**20 elements (4.3 GB): the elements around 2**31 and
    the last ones equal the reference computed on those blocks alone (block layouts), so
    the kernel's 64-bit indices are checked where int32 arithmetic would wrap."""
    n = 2**31 + 2**20
    if _free_gpu_bytes() < 4 * n:
        pytest.skip(f"needs {4 * n / 2**30:.0f} GiB of free GPU memory, have {_free_gpu_bytes() / 2**30:.1f}")
    k0, t = TABLES["W1"]
    inc = _increments("float16", k0, t.size, weight=1.0)
    key = np.array([0xABC, 0xDEF], np.uint32)
    call = jax_ffi.ffi_call(native.TARGET_NAME, jax.ShapeDtypeStruct((n,), jnp.float16), input_output_aliases={0: 0})
    full = jax.jit(call, donate_argnums=0)(
        _on_gpu(jnp.zeros((n,), jnp.float16)), _on_gpu(key), _on_gpu(rows(t)), _on_gpu(inc), _on_gpu(layout_of((n,)))
    )
    for start in (2**31 - 2**16, n - 2**16):
        piece = np.asarray(full[start : start + 2**16])
        block = np.zeros(2**16, np.float16)
        want = np_poisson_add(block, key, t, inc, (start,), (n,))
        assert_same_bits(piece, want, f"block at {start}")
    del full


def test_bad_layout_contents_fail_the_launch():
    """Layout contents live on the device: a block that does not fit aborts the kernel, an
    error at the next synchronisation (in a subprocess: it ends the CUDA context)."""
    code = textwrap.dedent("""
        import numpy as np, jax, jax.numpy as jnp
        from brainpy_poisson_plugin.ops import native
        from brainpy_poisson_plugin.ops._jax_compat import jax_ffi
        assert native.available("cuda")
        call = jax_ffi.ffi_call(native.TARGET_NAME, jax.ShapeDtypeStruct((8,), jnp.float32))
        gpu = jax.devices("gpu")[0]
        args = [np.zeros(8, np.float32), np.zeros(2, np.uint32), np.zeros((1, 2), np.uint32),
                np.zeros(2, np.float32), np.array([[5], [8]], np.uint32)]
        out = jax.jit(call)(*(jax.device_put(a, gpu) for a in args))
        print("RESULT", np.asarray(out).tolist())
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert "RESULT" not in r.stdout, "a bad layout must not produce a result"
    assert r.returncode != 0


def test_poisson_input_in_a_brainpy_loop_on_gpu():
    bp = pytest.importorskip("brainpy", reason="BrainPy wheels not carried to this machine")
    bm = bp.math
    from brainpy_poisson_plugin import PoissonInput

    def run(impl):
        with jax.default_device(GPU):
            bm.random.seed(7)
            v = bm.Variable(jnp.zeros(100_000, jnp.float32))
            node = PoissonInput(v, 1000, 10.0, 0.25, impl=impl)

            def step(i):
                bp.share.save(t=i * 0.1, i=i, dt=0.1)
                node.update()
                return v.value

            out = bm.for_loop(step, np.arange(20), progress_bar=False)
        assert list(jax.device_get(jnp.asarray(out)).shape) == [20, 100_000]
        return np.asarray(out), jnp.asarray(out).devices()

    fused, devs = run("fused")
    ref, _ = run("reference")
    assert devs == {GPU}
    assert_same_bits(fused, ref)
    assert abs(fused[-1].mean() / (0.25 * 20 * 1.0) - 1) < 0.02  # 20 steps of mean count 1
