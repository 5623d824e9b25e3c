"""The pure-JAX reference sampler: the oracle of the fused kernels and their fallback.

It computes exactly what ``docs/kernel-contract.md`` specifies, with ordinary JAX
operations, so it runs wherever JAX runs (any platform, any transformation) and is the
definition the CPU custom call and the CUDA kernel are tested against, bit for bit.

No random array is kept: each element's 64-bit uniform word is ``threefry2x32(key,
global_flat_index)`` (``jax.extend.random.threefry_2x32``), turned into a count by a
binary search over the fixed-point thresholds, and into an increment by a table lookup.
No BrainPy import.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax import lax

from ..ops._jax_compat import threefry_2x32

__all__ = ["compute_dtype", "count_indices", "element_words", "global_flat_index", "reference_poisson_add"]


def compute_dtype(dtype) -> jnp.dtype:
    """The dtype increments are added in: f64 for f64 targets, f32 otherwise."""
    return jnp.dtype(jnp.float64) if jnp.dtype(dtype) == jnp.float64 else jnp.dtype(jnp.float32)


_LOW16 = 0xFFFF


def _mul_wide(a: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(hi, lo)`` uint32 words of the 64-bit product of uint32 ``a`` and ``b``, with
    32-bit operations only (so it works without ``jax_enable_x64``)."""
    a0, a1 = a & _LOW16, a >> 16
    b0, b1 = b & _LOW16, b >> 16
    p00, p01, p10, p11 = a0 * b0, a0 * b1, a1 * b0, a1 * b1
    mid = (p00 >> 16) + (p01 & _LOW16) + (p10 & _LOW16)
    return p11 + (p01 >> 16) + (p10 >> 16) + (mid >> 16), a * b


def _add_wide(a_hi, a_lo, b_hi, b_lo) -> tuple[jax.Array, jax.Array]:
    """``(hi, lo)`` of the 64-bit sum (modulo 2**64) of two ``(hi, lo)`` uint32 pairs."""
    lo = a_lo + b_lo
    return a_hi + b_hi + (lo < a_lo).astype(jnp.uint32), lo


def global_flat_index(layout: jax.Array, shape: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
    """The 64-bit global flat index of every element of a local block of ``shape``, as
    ``(hi, lo)`` uint32 arrays.

    ``layout`` is ``u32[2, rank]`` (or ``i32``): the block's origin and the global
    dimensions, each below 2**32. ``g = sum_d (origin_d + i_d) * S_d`` with ``S`` the
    row-major strides of the global dimensions, exact up to 2**64 (callers refuse global
    arrays of 2**63 or more elements); computed in 32-bit words, so no ``x64`` needed.
    """
    rank = len(shape)
    if rank == 0:
        return jnp.zeros((), jnp.uint32), jnp.zeros((), jnp.uint32)
    origin = layout[0].astype(jnp.uint32)
    dims = layout[1].astype(jnp.uint32)
    hi = jnp.zeros(shape, jnp.uint32)
    lo = jnp.zeros(shape, jnp.uint32)
    s_hi, s_lo = jnp.uint32(0), jnp.uint32(1)  # stride S_d, 64-bit
    for d in reversed(range(rank)):
        coord = lax.broadcasted_iota(jnp.uint32, shape, d) + origin[d]
        t_hi, t_lo = _mul_wide(coord, s_lo)
        t_hi = t_hi + coord * s_hi
        hi, lo = _add_wide(hi, lo, t_hi, t_lo)
        m_hi, m_lo = _mul_wide(s_lo, dims[d])
        s_hi, s_lo = m_hi + s_hi * dims[d], m_lo
    return hi, lo


def element_words(key: jax.Array, layout: jax.Array, shape: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
    """Return the uniform 64-bit word of every element as ``(hi, lo)`` uint32 arrays.

    Args:
        key: ``u32[2]`` raw threefry key of this call.
        layout: ``u32[2, rank]`` block origin and global dimensions.
        shape: the local block's shape.

    Returns:
        ``(y0, y1)`` of ``threefry2x32(key, (g >> 32, g & 0xffffffff))`` for each
        element's global flat index ``g``; the word is ``y0 << 32 | y1``. For ``g < 2**32``
        the first counter word is 0.
    """
    size = math.prod(shape)
    g_hi, g_lo = global_flat_index(layout, shape)
    counters = jnp.concatenate([g_hi.reshape(-1), g_lo.reshape(-1)])
    bits = threefry_2x32(key, counters)
    return bits[:size].reshape(shape), bits[size:].reshape(shape)


def _count_fixed(hi: jax.Array, lo: jax.Array, thresholds: jax.Array) -> jax.Array:
    """``#{j : T[j] <= u}`` by a branch-free binary search of ``ceil(log2(L + 1))`` steps."""
    length = thresholds.shape[0]
    if length == 0:
        return jnp.zeros(hi.shape, jnp.int32)
    t_hi = thresholds[:, 0]
    t_lo = thresholds[:, 1]

    def at_most(m_hi, m_lo):  # T[mid] <= u
        return (m_hi < hi) | ((m_hi == hi) & (m_lo <= lo))

    # The first step has one midpoint for every element: compare with a scalar, so XLA
    # never sees (and constant-folds) a target-sized gather at a constant index.
    first = length // 2
    le = at_most(t_hi[first], t_lo[first])
    low = jnp.where(le, jnp.int32(first + 1), jnp.int32(0))
    high = jnp.where(le, jnp.int32(length), jnp.int32(first))
    for _ in range(math.ceil(math.log2(length + 1)) - 1):
        mid = (low + high) // 2
        safe = jnp.minimum(mid, length - 1)
        m_hi = t_hi[safe]
        m_lo = t_lo[safe]
        le = at_most(m_hi, m_lo)
        active = low < high
        low = jnp.where(active & le, mid + 1, low)
        high = jnp.where(active & ~le, mid, high)
    return low


#: Tables longer than this are searched only as deep as their rows below ``2**64 - 1`` need.
_ADAPTIVE_MIN_LENGTH = 31


def count_indices(hi: jax.Array, lo: jax.Array, thresholds: jax.Array) -> jax.Array:
    """Return ``#{j : T[j] <= u}`` for each word ``u = hi << 32 | lo`` (int32).

    ``thresholds`` is ``u32[L, 2]`` (rows ``(hi, lo)``), non-decreasing. A branch-free
    binary search, vectorised over elements. Rows equal to ``2**64 - 1`` (the padding of
    a table built at run time) are above every ``u`` but ``2**64 - 1``, so for a long
    table the search runs only ``ceil(log2(R + 1))`` steps, ``R`` the number of rows
    below ``2**64 - 1`` (a switch over the possible depths), and ``u = 2**64 - 1`` counts
    all ``L`` rows: the same count as a full search, at the cost of the real table.
    """
    length = thresholds.shape[0]
    if length <= _ADAPTIVE_MIN_LENGTH:
        return _count_fixed(hi, lo, thresholds)
    ones = jnp.uint32(0xFFFFFFFF)
    real = jnp.sum(~((thresholds[:, 0] == ones) & (thresholds[:, 1] == ones)), dtype=jnp.int32)
    max_depth = int(math.ceil(math.log2(length + 1)))
    # depth = ceil(log2(real + 1)) = number of bits of real.
    depth = jnp.int32(32) - lax.clz(real)

    def branch(d: int):
        prefix = thresholds[: min((1 << d) - 1, length)]
        return lambda h, lw: _count_fixed(h, lw, prefix)

    counts = lax.switch(depth, [branch(d) for d in range(max_depth + 1)], hi, lo)
    return jnp.where((hi == ones) & (lo == ones), jnp.int32(length), counts)


def reference_poisson_add(
    target: jax.Array,
    key: jax.Array,
    thresholds: jax.Array,
    increments: jax.Array,
    layout: jax.Array,
) -> jax.Array:
    """Add one binomial draw per element, exactly as the fused kernels do.

    Args:
        target: the array to add to (f16, bf16, f32 or f64; any shape).
        key: ``u32[2]``.
        thresholds: ``u32[L, 2]`` fixed-point CDF thresholds.
        increments: ``C[L + 1]`` with ``C`` from :func:`compute_dtype`;
            ``increments[c]`` is what an element whose count index is ``c`` adds.
        layout: ``u32[2, rank]`` block origin and global dimensions.

    Returns:
        The new target, same shape and dtype. Elements whose increment is zero are
        returned bit-for-bit unchanged.
    """
    if target.size == 0:
        return target
    hi, lo = element_words(key, layout, target.shape)
    counts = count_indices(hi, lo, thresholds)
    # The barrier keeps XLA from folding the increment computation (a multiply) into
    # the add below, where it could become a fused multiply-add on some backends.
    increments = lax.optimization_barrier(increments)
    inc = increments[counts]
    cdt = compute_dtype(target.dtype)
    summed = (target.astype(cdt) + inc).astype(target.dtype)
    return jnp.where(inc == 0, target, summed)
