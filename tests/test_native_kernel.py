"""The native ``bpp_poisson_add`` CPU kernel, called directly through ``ffi_call``, against
an independent numpy implementation of docs/kernel-contract.md written here.

The oracle shares no code with the package: Threefry-2x32 in numpy uint32 arithmetic
(itself checked against ``jax.extend.random.threefry_2x32``), the count by
``np.searchsorted`` over uint64 thresholds, the add in numpy's IEEE arithmetic.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp
from bits import assert_same_bits

from brainpy_poisson_plugin.ops import native
from brainpy_poisson_plugin.ops._jax_compat import jax_ffi, threefry_2x32

U64_MAX = np.uint64(0xFFFFFFFFFFFFFFFF)


def _x64():
    """Context manager enabling float64 for the duration of a test."""
    if hasattr(jax, "enable_x64"):  # jax >= 0.5
        return jax.enable_x64(True)
    from jax.experimental import enable_x64  # pragma: no cover - jax 0.4.x

    return enable_x64()


@pytest.fixture(scope="module", autouse=True)
def _native_loaded():
    status = native.load()
    if status.get("cpu") != "registered":
        pytest.skip(f"native CPU kernel not available: {status.get('cpu')}")


@pytest.fixture(autouse=True)
def _on_cpu():
    """Run on the CPU backend even where a GPU is the default (tests/test_gpu.py covers it)."""
    with jax.default_device(jax.devices("cpu")[0]):
        yield


# ---------------------------------------------------------------------------------------
# The oracle
# ---------------------------------------------------------------------------------------

_ROT0 = (13, 15, 26, 6)
_ROT1 = (17, 29, 16, 24)


def np_threefry2x32(k0: int, k1: int, x0: np.ndarray, x1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """20-round Threefry-2x32 of the counter pairs (x0, x1) under key (k0, k1)."""
    with np.errstate(over="ignore"):
        k0 = np.uint32(k0)
        k1 = np.uint32(k1)
        ks = (k0, k1, np.uint32(k0 ^ k1 ^ np.uint32(0x1BD11BDA)))
        x0 = np.asarray(x0, np.uint32) + ks[0]
        x1 = np.asarray(x1, np.uint32) + ks[1]
        for i in range(5):
            for r in _ROT0 if i % 2 == 0 else _ROT1:
                x0 = x0 + x1
                x1 = (x1 << np.uint32(r)) | (x1 >> np.uint32(32 - r))
                x1 = x1 ^ x0
            x0 = x0 + ks[(i + 1) % 3]
            x1 = x1 + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x0, x1


def np_global_index(shape, origin, gdims) -> np.ndarray:
    """uint64 global flat index of each element of the local block (row-major)."""
    g = np.zeros(shape, np.uint64)
    stride = 1
    for d in reversed(range(len(shape))):
        coord = np.arange(shape[d], dtype=np.uint64) + np.uint64(origin[d])
        view = [1] * len(shape)
        view[d] = shape[d]
        g = g + coord.reshape(view) * np.uint64(stride)
        stride *= int(gdims[d])
    return g


def np_words(key, shape, origin=None, gdims=None) -> np.ndarray:
    origin = [0] * len(shape) if origin is None else origin
    gdims = list(shape) if gdims is None else gdims
    g = np_global_index(tuple(shape), origin, gdims)
    y0, y1 = np_threefry2x32(int(key[0]), int(key[1]), (g >> np.uint64(32)).astype(np.uint32), g.astype(np.uint32))
    return (y0.astype(np.uint64) << np.uint64(32)) | y1.astype(np.uint64)


def np_poisson_add(target, key, thresholds64, increments, origin=None, gdims=None) -> np.ndarray:
    """The contract, in numpy. ``thresholds64`` is uint64[L]; increments C[L + 1]."""
    target = np.asarray(target)
    u = np_words(key, target.shape, origin, gdims)
    c = np.searchsorted(np.asarray(thresholds64, np.uint64), u.ravel(), side="right").reshape(u.shape)
    inc = np.asarray(increments)[c]
    cdt = np.float64 if target.dtype == np.float64 else np.float32
    summed = (target.astype(cdt) + inc).astype(target.dtype)
    return np.where(inc == 0, target, summed)


def rows(thresholds64) -> np.ndarray:
    t = np.asarray(thresholds64, np.uint64)
    out = np.empty((t.size, 2), np.uint32)
    out[:, 0] = (t >> np.uint64(32)).astype(np.uint32)
    out[:, 1] = (t & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    return out


def binomial_thresholds(n: int, p: float):
    """A realistic table (floor of the CDF in 2^-64 units, tails trimmed) via scipy."""
    from scipy import stats

    mean, sd = n * p, (n * p * (1 - p)) ** 0.5
    ks = np.arange(max(0, int(mean - 14 * sd) - 2), min(n, int(mean + 14 * sd) + 2) + 1)
    cdf = stats.binom.cdf(ks, n, p)
    vals = [int(x * 2.0**64) for x in cdf]
    keep = [(k, v) for k, v in zip(ks, vals) if 0 < v < 2**64]
    k0 = int(keep[0][0]) if keep else 0
    return k0, np.array([v for _, v in keep], np.uint64)


# ---------------------------------------------------------------------------------------
# Calling the kernel
# ---------------------------------------------------------------------------------------


def layout_of(shape, origin=None, gdims=None, dtype=np.uint32) -> np.ndarray:
    """The ``u32[2, rank]`` layout operand (written here, not taken from the package)."""
    origin = [0] * len(shape) if origin is None else list(origin)
    gdims = list(shape) if gdims is None else list(gdims)
    return np.array([origin, gdims], np.uint64).astype(dtype).reshape(2, len(shape))


def kernel(target, key, thresholds64, increments, origin=None, gdims=None, *, alias=True, jit=True):
    target = jnp.asarray(target)
    call = jax_ffi.ffi_call(
        native.TARGET_NAME,
        jax.ShapeDtypeStruct(target.shape, target.dtype),
        input_output_aliases={0: 0} if alias else {},
    )
    args = (
        target,
        jnp.asarray(np.asarray(key, np.uint32)),
        jnp.asarray(rows(thresholds64)),
        jnp.asarray(increments),
        jnp.asarray(layout_of(target.shape, origin, gdims)),
    )
    fn = jax.jit(call) if jit else call
    return np.asarray(fn(*args))


#: The contract's bit identity: the same bits for every non-NaN result, NaN where the
#: oracle has NaN (NaN payloads are not portable: a GPU returns the canonical NaN).
assert_bits_equal = assert_same_bits


def make_case(rng, L, dtype=np.float32, weight=0.5, zeros_at=()):
    """Random sorted thresholds (with duplicates, 0 and 2^64-1 entries) and increments."""
    t = np.sort(rng.integers(0, 2**64, size=L, dtype=np.uint64, endpoint=False))
    if L >= 8:
        t[1] = t[2]  # a duplicate
        t[-2:] = U64_MAX  # padding entries, as in a runtime-p table
        t[0] = 0
    t.sort()
    cdt = np.float64 if dtype == np.float64 else np.float32
    inc = (weight * (np.arange(L + 1) + 3)).astype(cdt)
    for z in zeros_at:
        inc[z] = 0
    return t, inc


# ---------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------


def test_numpy_threefry_matches_jax():
    rng = np.random.default_rng(0)
    for _ in range(5):
        key = rng.integers(0, 2**32, size=2, dtype=np.uint32)
        n = 1001
        x0 = rng.integers(0, 2**32, size=n, dtype=np.uint32)
        x1 = rng.integers(0, 2**32, size=n, dtype=np.uint32)
        y0, y1 = np_threefry2x32(key[0], key[1], x0, x1)
        got = np.asarray(threefry_2x32(jnp.asarray(key), jnp.asarray(np.concatenate([x0, x1]))))
        np.testing.assert_array_equal(got, np.concatenate([y0, y1]))


def test_library_and_registration():
    paths = native.library_paths()
    assert paths["cpu"] is not None and os.path.isfile(paths["cpu"])
    assert native.available("cpu")
    assert native.available("CPU")
    assert f"{native.TARGET_NAME}@cpu" in native.registered_targets()
    assert native.load() == native.load()  # idempotent
    assert native.load_error() is None


@pytest.mark.parametrize("size", [1, 2, 3, 7, 255, 256, 257, 1000, 4099, 65537, 200_003])
def test_sizes_f32(size):
    rng = np.random.default_rng(size)
    key = rng.integers(0, 2**32, size=2, dtype=np.uint32)
    k0, t = binomial_thresholds(1000, 0.001)
    inc = (np.float32(0.25) * (k0 + np.arange(t.size + 1))).astype(np.float32)
    target = rng.standard_normal(size).astype(np.float32)
    assert_bits_equal(kernel(target, key, t, inc), np_poisson_add(target, key, t, inc))


def test_zero_d_and_empty():
    rng = np.random.default_rng(1)
    key = np.array([3, 4], np.uint32)
    t, inc = make_case(rng, 12)
    target = np.array(1.5, np.float32)
    out = kernel(target, key, t, inc)
    assert out.shape == ()
    assert_bits_equal(out, np_poisson_add(target, key, t, inc))
    for shape in [(0,), (3, 0), (0, 5, 2)]:
        empty = np.zeros(shape, np.float32)
        assert kernel(empty, key, t, inc).shape == shape


def test_one_million_elements_and_shapes():
    rng = np.random.default_rng(2)
    key = np.array([0xDEADBEEF, 0x12345678], np.uint32)
    k0, t = binomial_thresholds(100, 0.0005)
    inc = (np.float32(1.25) * (k0 + np.arange(t.size + 1))).astype(np.float32)
    target = rng.standard_normal(10**6).astype(np.float32)
    want = np_poisson_add(target, key, t, inc)
    assert_bits_equal(kernel(target, key, t, inc), want)
    # The same elements in another (unsharded) shape: same global indices, same bits.
    assert_bits_equal(kernel(target.reshape(1000, 1000), key, t, inc), want.reshape(1000, 1000))
    assert_bits_equal(kernel(target.reshape(8, 125, 1000), key, t, inc), want.reshape(8, 125, 1000))


@pytest.mark.parametrize("L", [0, 1, 2, 3, 17, 300, 5000, 40_000])
def test_table_sizes(L):
    rng = np.random.default_rng(L + 10)
    key = rng.integers(0, 2**32, size=2, dtype=np.uint32)
    t, inc = make_case(rng, L)
    target = rng.standard_normal(30_011).astype(np.float32)
    assert_bits_equal(kernel(target, key, t, inc), np_poisson_add(target, key, t, inc))


@pytest.mark.parametrize("L", [40, 73, 200])
@pytest.mark.parametrize("special", [0xFFC00000, 0xFFC00001, 0x7FC00000, 0xFF800000])
def test_increments_with_nan_and_inf_bit_patterns(L, special):
    """Increments whose bits collide with the CPU guide's reserved flag value (negative
    quiet NaNs) or are other non-finite patterns must still be added exactly."""
    rng = np.random.default_rng(L * 7 + special % 97)
    key = rng.integers(0, 2**32, size=2, dtype=np.uint32)
    t, inc = make_case(rng, L)
    inc[L // 3] = np.array([special], np.uint32).view(np.float32)[0]
    target = rng.standard_normal(50_021).astype(np.float32)
    assert_bits_equal(kernel(target, key, t, inc), np_poisson_add(target, key, t, inc))


def test_large_realistic_table():
    from brainpy_poisson_plugin.sampling.tables import binomial_table

    table = binomial_table(3 * 10**7, 0.5)  # the package's own tables: L ~ 46000
    k0, t = table.k0, table.thresholds
    assert t.size > 40_000
    inc = (np.float32(1e-3) * (k0 + np.arange(t.size + 1))).astype(np.float32)
    rng = np.random.default_rng(3)
    target = rng.standard_normal((97, 1031)).astype(np.float32)
    key = np.array([11, 22], np.uint32)
    assert_bits_equal(kernel(target, key, t, inc), np_poisson_add(target, key, t, inc))


def test_clustered_tail_thresholds():
    """Many thresholds inside one guide bucket (the far tails) take the slow path."""
    rng = np.random.default_rng(4)
    hi = U64_MAX - np.uint64(2**40)
    t = np.sort(
        np.concatenate(
            [
                np.array([2**62, 2**63], np.uint64),
                hi + rng.integers(0, 2**40, size=50, dtype=np.uint64),
                np.zeros(5, np.uint64),
                rng.integers(0, 2**20, size=30, dtype=np.uint64),
            ]
        )
    )
    inc = np.arange(t.size + 1, dtype=np.float32)
    n = 200_000
    target = np.zeros(n, np.float32)
    key = np.array([5, 6], np.uint32)
    # Force words into the clusters too: check against the oracle for many keys.
    for k in range(3):
        key = np.array([5 + k, 6], np.uint32)
        assert_bits_equal(kernel(target, key, t, inc), np_poisson_add(target, key, t, inc))
    # And directly: a table whose thresholds are all in the top bucket.
    t2 = np.sort(U64_MAX - rng.integers(0, 2**50, size=64, dtype=np.uint64))
    t2 = np.concatenate([np.array([2**63], np.uint64), t2])
    inc2 = np.arange(t2.size + 1, dtype=np.float32)
    assert_bits_equal(kernel(target, key, t2, inc2), np_poisson_add(target, key, t2, inc2))


@pytest.mark.parametrize("extra", [0, 40, 3000])
def test_thresholds_equal_to_element_words(extra):
    """Thresholds at, just below and just above actual element words: the exact
    ``T <= u`` boundary, and hi words shared with elements (the exactly-settled path),
    for the small-table (linear) and the guide lookups."""
    rng = np.random.default_rng(11 + extra)
    key = np.array([0x0BADF00D, 17], np.uint32)
    n = 20_000
    u = np_words(key, (n,))
    picks = u[rng.choice(n, size=6, replace=False)]
    one = np.uint64(1)
    special = np.concatenate([picks, picks[:2] + one, picks[2:4] - one, (picks[4:] >> np.uint64(32)) << np.uint64(32)])
    others = rng.integers(0, 2**64, size=extra, dtype=np.uint64, endpoint=False)
    t = np.sort(np.concatenate([special, others, np.array([5, 2**32 - 1, 2**32, U64_MAX - 7], np.uint64)]))
    inc = (np.float32(0.5) * np.arange(t.size + 1) + 1).astype(np.float32)
    target = rng.standard_normal(n).astype(np.float32)
    assert_bits_equal(kernel(target, key, t, inc), np_poisson_add(target, key, t, inc))


def test_f64():
    rng = np.random.default_rng(5)
    key = np.array([7, 8], np.uint32)
    k0, t = binomial_thresholds(10_000, 0.002)
    with _x64():
        inc = 0.1 * (k0 + np.arange(t.size + 1, dtype=np.float64))
        for shape in [(), (1,), (513,), (33, 65), (200_001,)]:
            target = rng.standard_normal(shape)
            out = kernel(target, key, t, inc)
            assert out.dtype == np.float64
            assert_bits_equal(out, np_poisson_add(target, key, t, inc))
        tz, incz = make_case(rng, 40, np.float64, zeros_at=(0, 5))
        incz[5] = -0.0
        target = np.where(rng.random(10_000) < 0.5, -0.0, rng.standard_normal(10_000))
        out = kernel(target, key, tz, incz)
        assert_bits_equal(out, np_poisson_add(target, key, tz, incz))


def test_zero_increments_leave_bits_unchanged():
    rng = np.random.default_rng(6)
    key = np.array([9, 10], np.uint32)
    t, inc = make_case(rng, 10, zeros_at=(0, 3, 7))
    inc[3] = np.float32(-0.0)
    n = 50_000
    target = rng.standard_normal(n).astype(np.float32)
    target[::3] = np.float32(-0.0)
    target[1::7] = np.float32(np.nan)
    target[2::11] = np.float32(np.inf)
    out = kernel(target, key, t, inc)
    want = np_poisson_add(target, key, t, inc)
    assert_bits_equal(out, want)
    u = np_words(key, (n,))
    c = np.searchsorted(t, u, side="right")
    untouched = np.isin(c, [0, 3, 7])
    assert untouched.sum() > 1000
    np.testing.assert_array_equal(out.view(np.uint32)[untouched], target.view(np.uint32)[untouched])
    # -0.0 targets stay -0.0 where the increment is zero (a plain add would give +0.0)
    neg0 = untouched & (target.view(np.uint32) == np.uint32(0x80000000))
    assert neg0.any() and np.all(out.view(np.uint32)[neg0] == np.uint32(0x80000000))
    # All-zero increments (p == 0 or weight == 0): the whole target unchanged.
    assert_bits_equal(kernel(target, key, t, np.zeros_like(inc)), target)


@pytest.mark.parametrize(
    "gshape,origin,lshape",
    [
        ((6, 7, 5), (2, 3, 0), (3, 4, 5)),  # inner dim full: rows merge
        ((6, 7, 5), (1, 0, 2), (4, 7, 3)),  # strided inner runs
        ((6, 7, 5), (5, 6, 4), (1, 1, 1)),  # one element
        ((64, 10_000), (16, 0), (16, 10_000)),  # a leading-axis shard
        ((40, 3001), (0, 1000), (40, 1000)),  # a trailing-axis shard
        ((9, 1, 11), (3, 0, 4), (5, 1, 6)),
        ((1000,), (123,), (500,)),
    ],
)
def test_block_of_global_array(gshape, origin, lshape):
    rng = np.random.default_rng(7)
    key = np.array([0xABCDEF01, 0x2468ACE0], np.uint32)
    t, inc = make_case(rng, 25)
    whole = rng.standard_normal(gshape).astype(np.float32)
    full = kernel(whole, key, t, inc)
    sl = tuple(slice(o, o + n) for o, n in zip(origin, lshape))
    block = np.ascontiguousarray(whole[sl])
    got = kernel(block, key, t, inc, origin=origin, gdims=gshape)
    assert_bits_equal(got, full[sl])
    assert_bits_equal(got, np_poisson_add(block, key, t, inc, origin, gshape))


def test_distinct_output_buffer_copies_through():
    rng = np.random.default_rng(8)
    key = np.array([1, 2], np.uint32)
    t, inc = make_case(rng, 10, zeros_at=(0,))
    target = rng.standard_normal(100_000).astype(np.float32)
    tj = jnp.asarray(target)
    call = jax_ffi.ffi_call(native.TARGET_NAME, jax.ShapeDtypeStruct(tj.shape, tj.dtype))

    @jax.jit
    def f(x, k, th, i, lay):
        return call(x, k, th, i, lay), x  # the input stays live: XLA cannot alias

    out, back = f(tj, jnp.asarray(key), jnp.asarray(rows(t)), jnp.asarray(inc), jnp.asarray(layout_of(tj.shape)))
    assert_bits_equal(np.asarray(out), np_poisson_add(target, key, t, inc))
    assert_bits_equal(np.asarray(back), target)


def test_eager_call_and_in_loop():
    rng = np.random.default_rng(9)
    t, inc = make_case(rng, 20)
    target = rng.standard_normal(4097).astype(np.float32)
    key = np.array([3, 3], np.uint32)
    assert_bits_equal(kernel(target, key, t, inc, jit=False), np_poisson_add(target, key, t, inc))

    call = jax_ffi.ffi_call(
        native.TARGET_NAME, jax.ShapeDtypeStruct(target.shape, target.dtype), input_output_aliases={0: 0}
    )
    th, ij, lay = jnp.asarray(rows(t)), jnp.asarray(inc), jnp.asarray(layout_of(target.shape))

    @jax.jit
    def steps(x):
        def body(i, x):
            return call(x, jnp.stack([jnp.uint32(i), jnp.uint32(77)]), th, ij, lay)

        return jax.lax.fori_loop(0, 5, body, x)

    want = target
    for i in range(5):
        want = np_poisson_add(want, np.array([i, 77], np.uint32), t, inc)
    assert_bits_equal(np.asarray(steps(jnp.asarray(target))), want)


def test_no_temporary_proportional_to_target():
    n = 10**6
    t, inc = make_case(np.random.default_rng(10), 30)
    call = jax_ffi.ffi_call(native.TARGET_NAME, jax.ShapeDtypeStruct((n,), jnp.float32), input_output_aliases={0: 0})
    lowered = jax.jit(call, donate_argnums=0).lower(
        jax.ShapeDtypeStruct((n,), jnp.float32),
        jax.ShapeDtypeStruct((2,), jnp.uint32),
        jax.ShapeDtypeStruct((30, 2), jnp.uint32),
        jax.ShapeDtypeStruct((31,), jnp.float32),
        jax.ShapeDtypeStruct((2, 1), jnp.int32),
    )
    mem = lowered.compile().memory_analysis()
    if mem is None:
        pytest.skip("no memory analysis on this backend")
    assert mem.temp_size_in_bytes < n * 4 // 10


@pytest.mark.parametrize(
    "what,args",
    [
        ("dtype", dict(target=np.zeros(4, np.int32))),
        ("increments", dict(increments=np.zeros(3, np.float32))),
        ("increments", dict(increments=np.zeros(11, np.float64))),
        ("thresholds", dict(thresholds=np.zeros((10, 3), np.uint32))),
        ("key", dict(key=np.zeros(3, np.uint32))),
        ("layout", dict(layout=np.zeros((2, 2), np.int32))),
        ("layout", dict(layout=np.array([[3], [4]], np.int32))),
        ("non-decreasing", dict(thresholds=np.array([[5, 0]] * 5 + [[1, 0]] * 5, np.uint32))),
    ],
)
def test_invalid_operands_are_errors(what, args):
    base = dict(
        target=np.zeros(4, np.float32),
        key=np.zeros(2, np.uint32),
        thresholds=np.zeros((10, 2), np.uint32),
        increments=np.zeros(11, np.float32),
        layout=layout_of((4,)),
    )
    base.update(args)
    tgt = jnp.asarray(base["target"])
    call = jax_ffi.ffi_call(native.TARGET_NAME, jax.ShapeDtypeStruct(tgt.shape, tgt.dtype), input_output_aliases={0: 0})
    with contextlib.ExitStack() as stack:
        if any(np.asarray(v).dtype == np.float64 for v in base.values()):
            stack.enter_context(_x64())
        with pytest.raises(Exception, match=what if what != "dtype" else "does not support target dtype int32"):
            np.asarray(
                jax.jit(call)(*(jnp.asarray(base[k]) for k in ("target", "key", "thresholds", "increments", "layout")))
            )


def _run_python(code: str, env: dict) -> subprocess.CompletedProcess:
    full_env = dict(os.environ)
    full_env["JAX_PLATFORMS"] = "cpu"  # the CPU kernel, also on a machine with a GPU
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=full_env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_fallback_warning_when_disabled():
    code = """
        import json, warnings
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            from brainpy_poisson_plugin.ops import native
            assert not w, [str(x.message) for x in w]   # nothing at import
            a = native.available("cpu")
            native.load(); native.available("cuda")
        msgs = [str(x.message) for x in w if issubclass(x.category, RuntimeWarning)]
        print(json.dumps(dict(available=a, msgs=msgs, status=native.load(), error=native.load_error(),
                              targets=native.registered_targets())))
    """
    r = _run_python(code, {"BRAINPY_POISSON_NATIVE": "0"})
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["available"] is False
    assert res["msgs"] == []  # switched off on purpose: no warning (issue 12 item 9)
    assert res["targets"] == []
    assert "BRAINPY_POISSON_NATIVE" in res["error"]


@pytest.mark.slow
def test_thread_count_does_not_change_bits():
    code = """
        import numpy as np, jax, jax.numpy as jnp, hashlib
        from brainpy_poisson_plugin.ops import native
        from brainpy_poisson_plugin.ops._jax_compat import jax_ffi
        assert native.available("cpu")
        n = 3_000_017
        call = jax_ffi.ffi_call("bpp_poisson_add", jax.ShapeDtypeStruct((n,), jnp.float32),
                                input_output_aliases={0: 0})
        th = np.array([[0x5E000000, 0], [0xBC000000, 1], [0xF0000000, 0]], np.uint32)
        out = jax.jit(call)(jnp.zeros(n, jnp.float32), jnp.array([1, 2], jnp.uint32), jnp.asarray(th),
                            jnp.array([0.0, 1.0, 2.0, 3.0], jnp.float32), jnp.array([[0], [n]], jnp.int32))
        print(hashlib.sha256(np.asarray(out).tobytes()).hexdigest())
    """
    digests = set()
    for threads in ("1", "2", ""):
        r = _run_python(code, {"BRAINPY_POISSON_NUM_THREADS": threads})
        assert r.returncode == 0, r.stderr
        digests.add(r.stdout.strip().splitlines()[-1])
    assert len(digests) == 1


# ---------------------------------------------------------------------------------------
# Tables padded with all-ones rows (a run-time table: static length, fewer real rows)
# ---------------------------------------------------------------------------------------


def np_threefry2x32_inverse(k0: int, k1: int, y0: np.ndarray, y1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The counter pairs that ``np_threefry2x32`` maps to (y0, y1) under key (k0, k1):
    its 20 rounds undone in reverse (Threefry is a permutation of the counter space)."""
    with np.errstate(over="ignore"):
        k0 = np.uint32(k0)
        k1 = np.uint32(k1)
        ks = (k0, k1, np.uint32(k0 ^ k1 ^ np.uint32(0x1BD11BDA)))
        x0 = np.asarray(y0, np.uint32).copy()
        x1 = np.asarray(y1, np.uint32).copy()
        for i in reversed(range(5)):
            x1 = x1 - ks[(i + 2) % 3] - np.uint32(i + 1)
            x0 = x0 - ks[(i + 1) % 3]
            for r in reversed(_ROT0 if i % 2 == 0 else _ROT1):
                x1 = x1 ^ x0
                x1 = (x1 >> np.uint32(r)) | (x1 << np.uint32(32 - r))
                x0 = x0 - x1
        return x0 - ks[0], x1 - ks[1]


def test_numpy_threefry_inverse_round_trips():
    rng = np.random.default_rng(31)
    x0, x1 = (rng.integers(0, 2**32, size=500, dtype=np.uint32) for _ in range(2))
    y0, y1 = np_threefry2x32(0xDEADBEEF, 0x01234567, x0, x1)
    b0, b1 = np_threefry2x32_inverse(0xDEADBEEF, 0x01234567, y0, y1)
    np.testing.assert_array_equal(b0, x0)
    np.testing.assert_array_equal(b1, x1)


def padded_table(n: int, p: float, length: int, dtype=np.float32):
    """A realistic table of ``n, p`` padded with 2^64-1 rows to ``length`` rows, and
    increments whose padded range differs from the last real one (so index L is seen)."""
    k0, t = binomial_thresholds(n, p)
    assert t.size < length
    full = np.concatenate([t, np.full(length - t.size, U64_MAX, np.uint64)])
    cdt = np.float64 if dtype == np.float64 else np.float32
    inc = (0.25 * (k0 + np.arange(length + 1))).astype(cdt)
    inc[t.size + 1 :] = cdt(1000.0)  # never the increment of a word below 2^64-1
    inc[length] = cdt(-7.5)  # the increment of u = 2^64-1 only
    return full, inc, t.size


def _reference(target, key, t, inc, origin=None, gdims=None):
    from brainpy_poisson_plugin.sampling.reference import reference_poisson_add

    got = reference_poisson_add(
        jnp.asarray(target),
        jnp.asarray(np.asarray(key, np.uint32)),
        jnp.asarray(rows(t)),
        jnp.asarray(inc),
        jnp.asarray(layout_of(target.shape, origin, gdims)),
    )
    return np.asarray(got)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [0.001, 0.01, 0.2])
def test_padded_table_matches_oracle_and_reference(p, dtype):
    """A table of R real rows padded to L = 299 (n = 1000) takes the lookup of an R-row
    table; every element keeps the full table's bits, for many keys (R = 7..~150: the
    register search and the count guide on AVX-512 CPUs, linear and guide elsewhere)."""
    with _x64() if dtype == np.float64 else contextlib.nullcontext():
        _check_padded_random_keys(p, dtype)


def _check_padded_random_keys(p, dtype):
    t, inc, real = padded_table(1000, p, 299, dtype)
    assert real < 299
    rng = np.random.default_rng(int(p * 1000))
    target = rng.standard_normal(5000).astype(dtype)
    for _ in range(4):
        key = rng.integers(0, 2**32, size=2, dtype=np.uint32)
        want = np_poisson_add(target, key, t, inc)
        assert_bits_equal(kernel(target, key, t, inc, alias=False), want)
        assert_bits_equal(_reference(target, key, t, inc), want)


def _origin_of_word(key, u: int, gdims):
    """The 2-D block origin (row, col) whose global flat index draws the word ``u``
    under ``key``, or None when that index lies past ``gdims``."""
    x0, x1 = np_threefry2x32_inverse(
        int(key[0]), int(key[1]), np.array([u >> 32], np.uint32), np.array([u & 0xFFFFFFFF], np.uint32)
    )
    g = (int(x0[0]) << 32) | int(x1[0])
    r, c = divmod(g, gdims[1])
    return (r, c) if r < gdims[0] else None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [0.001, 0.2])
def test_padded_table_crafted_words(p, dtype):
    """Elements placed (via the block origin) where Threefry yields chosen words: u =
    2^64-1 gets increment L (every row, padding included, is <= u), u = 2^64-2 and the
    words at and around the last real threshold get the real table's counts."""
    with _x64() if dtype == np.float64 else contextlib.nullcontext():
        _check_crafted_words(p, dtype)


def _check_crafted_words(p, dtype):
    t, inc, real = padded_table(1000, p, 299, dtype)
    last = int(t[real - 1])
    words = [2**64 - 1, 2**64 - 2, last - 1, last, last + 1, int(t[0]) - 1, int(t[0])]
    gdims = (2**30, 2**32 - 1)
    width = 300  # a block of elements: one crafted, the others random words
    checked = 0
    for i, u in enumerate(words):
        for seed in range(64):
            key = np.random.default_rng([i, seed]).integers(0, 2**32, size=2, dtype=np.uint32)
            origin = _origin_of_word(key, u, gdims)
            if origin is not None and width <= origin[1] < gdims[1] - width:
                break
        else:
            pytest.fail(f"no key places word {u:#x} in the global array")
        row, col = origin
        start = (row, col - width // 2)
        block = np.random.default_rng(i).standard_normal((1, width)).astype(dtype)
        assert int(np_words(key, block.shape, start, gdims)[0, width // 2]) == u
        want = np_poisson_add(block, key, t, inc, start, gdims)
        got = kernel(block, key, t, inc, start, gdims, alias=False)
        assert_bits_equal(got, want)
        assert_bits_equal(_reference(block, key, t, inc, start, gdims), want)
        if u == 2**64 - 1:  # the contract's answer, independent of the oracle's search
            assert got[0, width // 2] == (block[0, width // 2].astype(inc.dtype) + inc[299]).astype(dtype)
        checked += 1
    assert checked == len(words)


# ---------------------------------------------------------------------------------------
# Global flat indices of 2**31 and more (no large allocation: small blocks far out)
# ---------------------------------------------------------------------------------------

LARGE_BLOCKS = [
    # (global dims, block origin, block shape): the flat indices the block covers
    ((2**32 - 1,), (2**31 - 700,), (1400,)),  # crosses 2**31 (int32 overflow)
    ((2**32 - 1,), (2**32 - 1001,), (1000,)),  # the last elements of the largest 1-D array
    ((3, 2**31), (1, 2**31 - 600), (2, 600)),  # rows 1 and 2: crosses 2**32 between rows
    ((5, 2**32 - 1), (2, 2**32 - 1501), (3, 1500)),  # hi word 1..4, strided rows
    ((2**20, 2**20, 4), (2**19, 2**20 - 3, 0), (2, 3, 4)),  # 2**42 elements, three dims
]


@pytest.mark.parametrize("gdims,origin,lshape", LARGE_BLOCKS)
def test_blocks_past_2_31_and_2_32(gdims, origin, lshape):
    """The counter's first word is the flat index's high 32 bits: a block whose global
    indices are at or past 2**32 draws from (hi, lo) counters, checked against the numpy
    oracle's uint64 index arithmetic; every element below 2**32 keeps hi = 0."""
    rng = np.random.default_rng(sum(origin) % 2**32)
    key = rng.integers(0, 2**32, size=2, dtype=np.uint32)
    k0, t = binomial_thresholds(1000, 0.01)
    inc = (np.float32(0.5) * (k0 + np.arange(t.size + 1))).astype(np.float32)
    block = rng.standard_normal(lshape).astype(np.float32)
    g = np_global_index(lshape, origin, gdims)
    assert int(g.max()) >= 2**31
    got = kernel(block, key, t, inc, origin=origin, gdims=gdims)
    assert_bits_equal(got, np_poisson_add(block, key, t, inc, origin, gdims))


def test_hi_word_is_the_counter_first_word():
    """An element with global index g >= 2**32 draws threefry((k0, k1), (g >> 32, g & mask)):
    the same word as the element 2**32 below it would with the first counter word set."""
    key = np.array([0x01234567, 0x89ABCDEF], np.uint32)
    t = np.array([2**63], np.uint64)  # count = top bit of the word
    inc = np.array([1.0, 2.0], np.float32)
    gdims, origin = (4, 2**32 - 1), (2, 2**32 - 9)
    got = kernel(np.zeros((1, 8), np.float32), key, t, inc, origin=origin, gdims=gdims)
    g = 2 * (2**32 - 1) + 2**32 - 9 + np.arange(8, dtype=np.uint64)
    y0, _ = np_threefry2x32(key[0], key[1], (g >> np.uint64(32)).astype(np.uint32), g.astype(np.uint32))
    np.testing.assert_array_equal(got.ravel(), np.where(y0 >= 2**31, 2.0, 1.0).astype(np.float32))


def test_int32_layout_still_accepted():
    rng = np.random.default_rng(12)
    key = np.array([4, 5], np.uint32)
    t, inc = make_case(rng, 25)
    whole = rng.standard_normal((40, 300)).astype(np.float32)
    want = np_poisson_add(whole[10:20], key, t, inc, (10, 0), (40, 300))
    call = jax_ffi.ffi_call(native.TARGET_NAME, jax.ShapeDtypeStruct((10, 300), jnp.float32))
    got = jax.jit(call)(
        jnp.asarray(whole[10:20]),
        jnp.asarray(key),
        jnp.asarray(rows(t)),
        jnp.asarray(inc),
        jnp.asarray(layout_of((10, 300), (10, 0), (40, 300), np.int32)),
    )
    assert_bits_equal(np.asarray(got), want)


@pytest.mark.parametrize(
    "layout,match",
    [
        (np.array([[0, 0], [2**32 - 1, 2**32 - 1]], np.uint64).astype(np.uint32), "2\\^63"),
        (np.array([[2**32 - 2], [2**32 - 1]], np.uint64).astype(np.uint32), "does not fit"),
        (np.zeros((2, 1), np.float32), "layout must be uint32"),
        (np.array([[-1], [8]], np.int32), "negative"),
    ],
)
def test_bad_layout_contents_are_errors(layout, match):
    shape = (4,) if layout.shape[1] == 1 else (1, 4)
    call = jax_ffi.ffi_call(native.TARGET_NAME, jax.ShapeDtypeStruct(shape, jnp.float32))
    with pytest.raises(Exception, match=match):
        np.asarray(
            jax.jit(call)(
                jnp.zeros(shape, jnp.float32),
                jnp.zeros(2, jnp.uint32),
                jnp.zeros((1, 2), jnp.uint32),
                jnp.zeros(2, jnp.float32),
                jnp.asarray(layout),
            )
        )


# ---------------------------------------------------------------------------------------
# The compute-capability check at registration (ops/native.py), with a stand-in library
# ---------------------------------------------------------------------------------------


class _FakeCudaLibrary:
    """Stands in for ``_bpp_cuda``: ``BppCudaCheckDevice`` answers as the CUDA runtime
    would for a GPU of compute capability ``cc`` given images for ``built``."""

    def __init__(self, cc, built=(80, 90)):
        self.cc = cc
        self.built = built

    def BppCudaCheckDevice(self, major, minor, msg, length):
        import ctypes

        major._obj.value, minor._obj.value = divmod(self.cc, 10)
        if self.cc >= min(self.built):
            return 0
        text = f"no kernel image for compute capability {self.cc // 10}.{self.cc % 10}".encode()
        ctypes.memmove(msg, text, len(text))
        return 209  # cudaErrorNoKernelImageForDevice


def test_cuda_device_problem_names_an_old_gpu():
    assert native.cuda_device_problem(_FakeCudaLibrary(90)) is None
    assert native.cuda_device_problem(_FakeCudaLibrary(80)) is None
    problem = native.cuda_device_problem(_FakeCudaLibrary(75))
    assert problem is not None and "compute capability 7.5" in problem
    assert "BppCudaCheckDevice" in native.cuda_device_problem(object())
