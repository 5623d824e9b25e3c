"""The CUDA kernel's per-thread body, compiled as host code, over an emulated grid.

``bpp::grid_stride_elements`` (``_native/include/bpp/poisson_kernel.h``) is the loop each
CUDA thread runs: the flat ``base + i * stride0`` mapping for contiguous blocks, the
precomputed-step cursor for strided (sharded) blocks, the table search and the one add
``bpp::add_increment``. The CPU library exports ``BppEmulateCudaGrid``, which runs it for
every block and thread of a launch of the given shape, with the table staged as the kernel
stages it into shared memory or read from the operand as its global-memory path does.
Checked bit for bit against the independent numpy oracle of tests/test_native_kernel.py.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from bits import assert_same_bits
from test_native_kernel import binomial_thresholds, make_case, np_poisson_add, rows

from brainpy_poisson_plugin.ops import native

_PATH = native.library_paths()["cpu"]
if _PATH is None:
    pytest.skip("native CPU library not built", allow_module_level=True)
_LIB = ctypes.CDLL(_PATH)
_EMULATE = _LIB.BppEmulateCudaGrid
_EMULATE.restype = ctypes.c_int
_EMULATE.argtypes = [
    ctypes.c_int,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_int,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_uint32,
    ctypes.c_void_p,
    ctypes.c_int64,
    ctypes.c_int64,
    ctypes.c_int,
    ctypes.POINTER(ctypes.c_char_p),
]


def emulate(block, key, thresholds64, increments, origin=None, gdims=None, *, grid, threads, staged):
    """The emulated launch's result for ``block`` (f32 or f64, C-contiguous)."""
    block = np.ascontiguousarray(block)
    origin = [0] * block.ndim if origin is None else list(origin)
    gdims = list(block.shape) if gdims is None else list(gdims)
    layout = np.ascontiguousarray(np.array([origin, gdims], np.uint64).astype(np.uint32).reshape(2, block.ndim))
    local = np.ascontiguousarray(np.array(block.shape, np.int64))
    th = np.ascontiguousarray(rows(thresholds64))
    inc = np.ascontiguousarray(increments, block.dtype)
    key = np.ascontiguousarray(key, np.uint32)
    out = np.full_like(block, np.nan)  # an element the grid misses stays NaN (fails the check)
    msg = ctypes.c_char_p()
    rc = _EMULATE(
        0 if block.dtype == np.float32 else 1,
        block.ctypes.data,
        out.ctypes.data,
        block.ndim,
        local.ctypes.data,
        layout.ctypes.data,
        key.ctypes.data,
        th.ctypes.data,
        th.shape[0],
        inc.ctypes.data,
        grid,
        threads,
        int(staged),
        ctypes.byref(msg),
    )
    if rc != 0:
        raise ValueError(msg.value.decode())
    return out


LAUNCHES = [(1, 1), (3, 32), (5, 256), (40, 256)]  # (blocks, threads): one thread up to more threads than elements


@pytest.mark.parametrize("staged", [True, False], ids=["shared", "global"])
@pytest.mark.parametrize("grid,threads", LAUNCHES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unsharded_flat_path(staged, grid, threads, dtype):
    rng = np.random.default_rng(grid * 1000 + threads)
    key = rng.integers(0, 2**32, size=2, dtype=np.uint32)
    k0, t = binomial_thresholds(1000, 0.002)
    inc = (dtype(0.3) * (k0 + np.arange(t.size + 1))).astype(dtype)
    for shape in [(1,), (7,), (5000,), (37, 29)]:
        target = rng.standard_normal(shape).astype(dtype)
        got = emulate(target, key, t, inc, grid=grid, threads=threads, staged=staged)
        assert_same_bits(got, np_poisson_add(target, key, t, inc), f"{shape}")


BLOCKS = [
    ((6, 7, 5), (2, 3, 0), (3, 4, 5)),  # rows merge: flat path with a base
    ((6, 7, 5), (1, 0, 2), (4, 7, 3)),  # strided: the cursor path
    ((40, 3001), (0, 1000), (40, 1000)),  # a trailing-axis shard
    ((9, 3, 11), (3, 1, 4), (5, 2, 6)),  # three strided dims
    ((3, 2**31), (1, 2**31 - 300), (2, 300)),  # flat indices past 2**32
    ((5, 2**32 - 1), (2, 2**32 - 301), (3, 300)),
]


@pytest.mark.parametrize("staged", [True, False], ids=["shared", "global"])
@pytest.mark.parametrize("grid,threads", LAUNCHES)
@pytest.mark.parametrize("gdims,origin,lshape", BLOCKS)
def test_blocks_of_sharded_calls(staged, grid, threads, gdims, origin, lshape):
    rng = np.random.default_rng(7)
    key = np.array([0xABCDEF01, 0x2468ACE0], np.uint32)
    t, inc = make_case(rng, 300 if staged else 40)
    block = rng.standard_normal(lshape).astype(np.float32)
    got = emulate(block, key, t, inc, origin, gdims, grid=grid, threads=threads, staged=staged)
    assert_same_bits(got, np_poisson_add(block, key, t, inc, origin, gdims))


def test_the_one_add_zero_increments_nan_and_signed_zero():
    """add_increment: a zero increment (either sign) leaves the element's bits as they
    are (-0.0 and NaN payloads included); NaN increments give NaN."""
    rng = np.random.default_rng(6)
    key = np.array([9, 10], np.uint32)
    t, inc = make_case(rng, 10, zeros_at=(0, 3, 7))
    inc[3] = np.float32(-0.0)
    inc[5] = np.float32(np.nan)
    target = rng.standard_normal(20_000).astype(np.float32)
    target[::3] = np.float32(-0.0)
    target[1::7] = np.array([0x7FC01234], np.uint32).view(np.float32)[0]  # a NaN with a payload
    got = emulate(target, key, t, inc, grid=13, threads=64, staged=True)
    want = np_poisson_add(target, key, t, inc)
    assert_same_bits(got, want)
    untouched = np.isin(np.searchsorted(t, _words(key, target.size), side="right"), [0, 3, 7])
    np.testing.assert_array_equal(got.view(np.uint32)[untouched], target.view(np.uint32)[untouched])


def _words(key, n):
    from test_native_kernel import np_words

    return np_words(key, (n,))


def test_bad_contents_abort_the_emulated_kernel():
    t = np.array([5, 3], np.uint64)  # out of order
    with pytest.raises(ValueError, match="non-decreasing"):
        emulate(np.zeros(10, np.float32), [1, 2], t, np.zeros(3, np.float32), grid=2, threads=4, staged=True)
    with pytest.raises(ValueError, match="does not fit"):
        emulate(
            np.zeros(10, np.float32),
            [1, 2],
            np.zeros(0, np.uint64),
            np.zeros(1, np.float32),
            (5,),
            (12,),
            grid=2,
            threads=4,
            staged=False,
        )


@pytest.mark.parametrize("staged", [True, False])
def test_padded_table_and_all_ones_word(staged):
    """A table padded with 2^64-1 rows: the body searches the real rows only, and the
    element placed (via the block origin) where Threefry yields u = 2^64-1 gets
    increment L, as the oracle's search over all rows."""
    from test_native_kernel import _origin_of_word, padded_table

    t, inc, _ = padded_table(1000, 0.01, 299)
    gdims, width = (2**30, 2**32 - 1), 300
    for seed in range(64):
        key = np.random.default_rng([7, seed]).integers(0, 2**32, size=2, dtype=np.uint32)
        origin = _origin_of_word(key, 2**64 - 1, gdims)
        if origin is not None and width <= origin[1] < gdims[1] - width:
            break
    else:
        pytest.fail("no key places the word 2^64-1 in the global array")
    start = (origin[0], origin[1] - width // 2)
    block = np.random.default_rng(8).standard_normal((1, width)).astype(np.float32)
    got = emulate(block, key, t, inc, start, gdims, grid=3, threads=32, staged=staged)
    assert_same_bits(got, np_poisson_add(block, key, t, inc, start, gdims))
    assert got[0, width // 2] == np.float32(block[0, width // 2] + inc[299])
