"""Bit-identity helpers shared by the tests.

The kernel contract (docs/kernel-contract.md): every backend gives the same bits for every
non-NaN result, and NaN exactly where the reference has NaN. NaN payloads are not portable
(a GPU returns the canonical NaN), so NaN elements are compared by position only.
"""

from __future__ import annotations

import numpy as np

_UINT = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def as_bits(x) -> np.ndarray:
    """The raw bits of a float array (any float dtype, incl. bfloat16) as unsigned ints."""
    a = np.asarray(x)
    return a.view(_UINT[a.dtype.itemsize])


def same_bits(a, b) -> bool:
    """Whether ``a`` and ``b`` have the same shape and dtype, NaN at the same places and
    identical bits everywhere else."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    nan_a = np.isnan(a.astype(np.float64)) if a.dtype.kind == "V" or a.dtype.itemsize < 4 else np.isnan(a)
    nan_b = np.isnan(b.astype(np.float64)) if b.dtype.kind == "V" or b.dtype.itemsize < 4 else np.isnan(b)
    if not np.array_equal(nan_a, nan_b):
        return False
    return bool(np.array_equal(as_bits(a)[~nan_a], as_bits(b)[~nan_b]))


def assert_same_bits(actual, expected, msg: str = "") -> None:
    """Assert :func:`same_bits`, reporting the first differing element."""
    a = np.asarray(actual)
    e = np.asarray(expected)
    assert a.shape == e.shape and a.dtype == e.dtype, f"{msg} shape/dtype {a.shape} {a.dtype} vs {e.shape} {e.dtype}"
    if same_bits(a, e):
        return
    fa = a.astype(np.float64).ravel()
    fe = e.astype(np.float64).ravel()
    na, ne = np.isnan(fa), np.isnan(fe)
    bad = np.flatnonzero((na != ne) | (~na & ~ne & (as_bits(a).ravel() != as_bits(e).ravel())))
    i = int(bad[0])
    raise AssertionError(f"{msg} {bad.size} elements differ; first at flat index {i}: {fa[i]!r} vs {fe[i]!r}")
