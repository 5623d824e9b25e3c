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

__all__ = ["element_words", "count_indices", "reference_poisson_add", "compute_dtype"]


def compute_dtype(dtype) -> jnp.dtype:
    """The dtype increments are added in: f64 for f64 targets, f32 otherwise."""
    return jnp.dtype(jnp.float64) if jnp.dtype(dtype) == jnp.float64 else jnp.dtype(jnp.float32)


def _global_flat_index(layout: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """``uint32`` global flat index of every element of a local block of ``shape``.

    ``layout`` is ``i32[2, rank]``: the block's origin and the global dimensions. The
    arithmetic wraps modulo 2**32, which is exact because callers refuse global arrays
    of 2**32 or more elements.
    """
    rank = len(shape)
    if rank == 0:
        return jnp.zeros((), jnp.uint32)
    origin = layout[0].astype(jnp.uint32)
    dims = layout[1].astype(jnp.uint32)
    index = jnp.zeros(shape, jnp.uint32)
    stride = jnp.uint32(1)
    for d in reversed(range(rank)):
        coord = lax.broadcasted_iota(jnp.uint32, shape, d) + origin[d]
        index = index + coord * stride
        stride = stride * dims[d]
    return index


def element_words(key: jax.Array, layout: jax.Array, shape: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
    """Return the uniform 64-bit word of every element as ``(hi, lo)`` uint32 arrays.

    Args:
        key: ``u32[2]`` raw threefry key of this call.
        layout: ``i32[2, rank]`` block origin and global dimensions.
        shape: the local block's shape.

    Returns:
        ``(y0, y1)`` of ``threefry2x32(key, (0, g))`` for each element's global flat
        index ``g``; the word is ``y0 << 32 | y1``.
    """
    size = math.prod(shape)
    g = _global_flat_index(layout, shape).reshape(-1)
    counters = jnp.concatenate([jnp.zeros((size,), jnp.uint32), g])
    bits = threefry_2x32(key, counters)
    return bits[:size].reshape(shape), bits[size:].reshape(shape)


def count_indices(hi: jax.Array, lo: jax.Array, thresholds: jax.Array) -> jax.Array:
    """Return ``#{j : T[j] <= u}`` for each word ``u = hi << 32 | lo`` (int32).

    ``thresholds`` is ``u32[L, 2]`` (rows ``(hi, lo)``), non-decreasing. A branch-free
    binary search of ``ceil(log2(L + 1))`` steps, vectorised over elements.
    """
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
    for _ in range(int(math.ceil(math.log2(length + 1))) - 1):
        mid = (low + high) // 2
        safe = jnp.minimum(mid, length - 1)
        m_hi = t_hi[safe]
        m_lo = t_lo[safe]
        le = at_most(m_hi, m_lo)
        active = low < high
        low = jnp.where(active & le, mid + 1, low)
        high = jnp.where(active & ~le, mid, high)
    return low


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
        layout: ``i32[2, rank]`` block origin and global dimensions.

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
