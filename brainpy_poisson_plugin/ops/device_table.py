"""Sampling tables for a ``p`` known only at run time, built inside the compiled program.

A traced ``p`` (a rate that changes every step, a traced ``dt``, ``vmap`` over rates)
gets its table from the ``bpp_binomial_table`` primitive. Its lowering is the
``bpp_binomial_table`` FFI custom call on CPU and CUDA where the native library is
loaded: the table is built on the device, in the same program as the sampling, with the
deterministic construction of ``bpp/binomial_table.h`` (the one
:func:`~brainpy_poisson_plugin.sampling.tables.binomial_table` uses on the host), so a
traced ``p`` gives exactly the table a constant ``p`` of the same value gets, on every
backend, with no host callback and no device-to-host transfer.

Where no native library is loaded for the platform (degraded mode: a build without the
library, ``BRAINPY_POISSON_NATIVE=0``, or a platform without a kernel) the same
primitive lowers to a ``jax.pure_callback`` that builds the tables on the host with the
same construction: the same tables, but a host round trip per call, and a program that
``jax.export`` cannot serialise.

Each table is padded to the static length :func:`table_length` ``(n)`` (it bounds the
table of every ``p``) with rows ``0xffffffff`` (``T = 2**64 - 1``); ``size`` says how
many rows are real. A run-time ``p`` that is NaN or outside ``[0, 1]`` gives
``k0 = size = -1`` (the caller turns that into NaN increments). A batched ``p`` (any
shape, e.g. under ``vmap``) gives one table per element, from one call.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.interpreters import ad, batching, mlir

from ..sampling.tables import binomial_table, max_table_length
from . import native
from ._jax_compat import Primitive, jax_ffi

__all__ = ["binomial_table_p", "host_tables", "table_length", "traced_table", "uses_native_table"]

#: The primitive: operand ``p`` (f32/f64, any shape); params ``num_input``, ``length``;
#: results ``thresholds u32[*p.shape, length, 2]``, ``k0 i32[*p.shape]``, ``size i32[*p.shape]``.
binomial_table_p = Primitive("bpp_binomial_table")
binomial_table_p.multiple_results = True

_PAD = 0xFFFFFFFF


def table_length(num_input: int) -> int:
    """Rows of a run-time table: :func:`~brainpy_poisson_plugin.sampling.tables.max_table_length`,
    which bounds ``binomial_table(num_input, p).size`` for every ``p``."""
    return max_table_length(num_input)


def traced_table(num_input: int, p) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Return ``(thresholds, k0, size)`` for a (possibly traced, possibly batched) ``p``.

    Args:
        num_input: number of trials, already checked (an int in ``[1, 2**31 - 1]``).
        p: probability, any real array; computed in float64 when x64 is enabled, in
            float32 otherwise (the table is then that of ``float(p32)``, exactly).

    Returns:
        ``thresholds u32[*p.shape, L, 2]`` (rows ``(hi, lo)``, padded with ``0xffffffff``),
        ``k0 i32[*p.shape]`` and ``size i32[*p.shape]`` (``-1`` where ``p`` is NaN or
        outside ``[0, 1]``), with ``L = table_length(num_input)``.
    """
    dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    p = jnp.asarray(p, dtype)
    return tuple(binomial_table_p.bind(p, num_input=int(num_input), length=table_length(num_input)))


def _abstract_eval(p, *, num_input, length):
    shape = tuple(p.shape)
    return (
        jax.core.ShapedArray(shape + (length, 2), jnp.uint32),
        jax.core.ShapedArray(shape, jnp.int32),
        jax.core.ShapedArray(shape, jnp.int32),
    )


binomial_table_p.def_abstract_eval(_abstract_eval)


@functools.lru_cache(maxsize=64)
def _jitted(num_input: int, length: int):
    return jax.jit(lambda x: binomial_table_p.bind(x, num_input=num_input, length=length))


def _impl(p, *, num_input, length):
    # Eager calls compile the same lowering as under jit.
    return _jitted(num_input, length)(p)


binomial_table_p.def_impl(_impl)


def _tangent_aval(aval):
    to_tangent = getattr(aval, "to_tangent_aval", None)  # jax >= 0.4.36
    return to_tangent() if to_tangent is not None else aval.at_least_vspace()


def _jvp(primals, tangents, *, num_input, length):
    """The table is integer-valued: its tangent is zero (so ``grad`` through a ``p`` that
    depends on the differentiated variable works, and gives the weight's derivative)."""
    out = binomial_table_p.bind(*primals, num_input=num_input, length=length)
    return out, [ad.Zero(_tangent_aval(jax.core.ShapedArray(o.shape, o.dtype))) for o in out]


ad.primitive_jvps[binomial_table_p] = _jvp


def _batch_rule(batched_args, batch_dims, *, num_input, length):
    """vmap: the primitive already takes any batch shape; one call builds every table."""
    (p,), (bd,) = batched_args, batch_dims
    p = jnp.moveaxis(p, bd, 0)
    out = binomial_table_p.bind(p, num_input=num_input, length=length)
    return out, (0, 0, 0)


batching.primitive_batchers[binomial_table_p] = _batch_rule


# ----------------------------------------------------------------------------------------
# Lowering: the FFI custom call, or (degraded mode) a host callback.
# ----------------------------------------------------------------------------------------


def host_tables(num_input: int, length: int, p) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Build the padded tables of every element of ``p`` on the host (numpy in, numpy out).

    The callback of the degraded mode, and a reference for tests: the same tables as the
    custom call (both run the construction of :mod:`~brainpy_poisson_plugin.sampling.table_builder`).
    """
    p = np.asarray(p)
    flat = p.reshape(-1).astype(np.float64)
    words = np.full((flat.size, length, 2), _PAD, np.uint32)
    k0 = np.full(flat.size, -1, np.int32)
    size = np.full(flat.size, -1, np.int32)
    for i, pf in enumerate(flat.tolist()):
        if not (0.0 <= pf <= 1.0):
            continue  # NaN or out of range: k0 = size = -1, all rows padding
        table = binomial_table(num_input, pf)
        words[i, : table.size] = table.words()
        k0[i] = table.k0
        size[i] = table.size
    return words.reshape(p.shape + (length, 2)), k0.reshape(p.shape), size.reshape(p.shape)


def _callback_tables(p, *, num_input, length):
    shapes = (
        jax.ShapeDtypeStruct(p.shape + (length, 2), jnp.uint32),
        jax.ShapeDtypeStruct(p.shape, jnp.int32),
        jax.ShapeDtypeStruct(p.shape, jnp.int32),
    )
    return jax.pure_callback(lambda x: host_tables(num_input, length, x), shapes, p)


_callback_rule = mlir.lower_fun(_callback_tables, multiple_results=True)
_ffi_rule = jax_ffi.ffi_lowering(native.TABLE_TARGET_NAME)


def uses_native_table(platform: str) -> bool:
    """Whether tables for a traced ``p`` are built by the custom call on ``platform``
    (``"cpu"`` or ``"cuda"``), rather than by the degraded-mode host callback."""
    return native.available(platform)


def _rule_for(platform: str | None):
    def rule(ctx, p, *, num_input, length):
        if platform is not None and uses_native_table(platform):
            return _ffi_rule(ctx, p, num_input=np.int64(num_input))
        return _callback_rule(ctx, p, num_input=num_input, length=length)

    return rule


def register() -> None:
    """Register the lowering rules (idempotent; runs on import)."""
    mlir.register_lowering(binomial_table_p, _rule_for(None))
    for platform in ("cpu", "cuda"):
        mlir.register_lowering(binomial_table_p, _rule_for(platform), platform=platform)


register()
