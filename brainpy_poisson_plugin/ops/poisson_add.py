"""``poisson_add``: the functional core, for users inside or outside BrainPy.

``poisson_add(target, key, num_input, p, weight)`` returns ``target + weight * k`` with
an independent ``k ~ Binomial(num_input, p)`` per element, exactly (table inversion) and
reproducibly (counter-based: the draws depend only on the key and each element's global
position). Arguments are checked before any work. Differentiable in ``target`` (the
identity) and ``weight`` (the counts) through a custom JVP.
"""

from __future__ import annotations

import functools
import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np

from ..checks import FUNCTIONAL_IMPLS, check_impl
from ..sampling.reference import compute_dtype
from ..sampling.tables import binomial_table, check_num_input
from . import lowering  # noqa: F401  (registers the lowering rules)
from .blocks import resolve_layout
from .device_table import traced_table
from .primitive import bind, check_layout_shape

__all__ = ["poisson_add", "key_words", "FUNCTIONAL_IMPLS"]


_FLOAT_DTYPES = tuple(jnp.dtype(d) for d in ("float16", "bfloat16", "float32", "float64"))
_TWO64_MINUS_1 = (1 << 64) - 1


def key_words(key) -> jax.Array:
    """Return a PRNG key as its raw ``u32[2]`` threefry words.

    Accepts a typed key (``jax.random.key``; threefry only) or a raw ``uint32[2]`` key
    (``jax.random.PRNGKey``). Raises ``TypeError``/``ValueError`` naming ``key``.
    """
    if isinstance(key, (int, np.integer)):
        raise TypeError(f"key must be a JAX PRNG key, got key={key!r}; use jax.random.key({key})")
    arr = key
    if hasattr(arr, "dtype") and jnp.issubdtype(arr.dtype, jax.dtypes.prng_key):
        if arr.shape != ():
            raise ValueError(f"key must be a single key, got a key array of shape {arr.shape}")
        arr = jax.random.key_data(arr)
    arr = jnp.asarray(arr)
    if arr.shape != (2,) or arr.dtype != jnp.uint32:
        raise ValueError(
            f"key must be a threefry key (typed, or uint32[2]), got key of shape {arr.shape} and dtype {arr.dtype}"
        )
    return arr


def _is_concrete(x) -> bool:
    """Whether ``x`` has a value now (not a tracer of jit/vmap/grad)."""
    return not isinstance(x, jax.core.Tracer)


def _check_scalar(name: str, value):
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a real scalar, got {name}={value!r}")
    if hasattr(value, "shape") and tuple(value.shape) != ():
        raise ValueError(f"{name} must be a scalar, got {name} of shape {tuple(value.shape)}")
    if not isinstance(value, (numbers.Real, np.generic, jax.Array)) and not hasattr(value, "dtype"):
        raise TypeError(f"{name} must be a real scalar, got {name}={value!r}")


def _check_target(target) -> None:
    dtype = jnp.dtype(target.dtype)
    if dtype not in _FLOAT_DTYPES:
        raise TypeError(
            f"target must have a floating dtype (float16, bfloat16, float32, float64), got target.dtype={dtype}"
        )
    check_layout_shape(tuple(target.shape))


def _static_table(n: int, p: float):
    table = binomial_table(n, p)
    return table.words(), np.int32(table.k0), np.int32(table.size)


def _traced_table(n: int, p):
    """The padded table for a run-time ``p``, built inside the compiled program
    (:mod:`.device_table`)."""
    return traced_table(n, p)


def _count_values(k0, size, length: int, cdt) -> jax.Array:
    """``k0 + min(c, size)`` for ``c`` in ``0..length``: the count each index stands for.

    A negative ``size`` (run-time ``p`` out of range) gives NaN everywhere.
    """
    c = jnp.minimum(jnp.arange(length + 1, dtype=jnp.int32), jnp.maximum(size, 0))
    values = (k0 + c).astype(cdt)
    return jnp.where(size < 0, jnp.asarray(jnp.nan, cdt), values)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0, 1))
def _apply(impl, placement, target, weight, key, thresholds, k0, size, layout):
    cdt = compute_dtype(target.dtype)
    counts = _count_values(k0, size, thresholds.shape[0], cdt)
    increments = jnp.asarray(weight, cdt) * counts
    return bind(target, key, thresholds, increments, layout, impl=impl, placement=placement)


@_apply.defjvp
def _apply_jvp(impl, placement, primals, tangents):
    target, weight, key, thresholds, k0, size, layout = primals
    t_dot, w_dot = tangents[:2]
    out = _apply(impl, placement, *primals)
    cdt = compute_dtype(target.dtype)
    # The same key and counters give the same counts: draw them again with weight 1.
    counts = bind(
        jnp.zeros(target.shape, cdt), key, thresholds,
        _count_values(k0, size, thresholds.shape[0], cdt), layout, impl=impl, placement=placement,
    )
    tangent = t_dot + (jnp.asarray(w_dot, cdt) * counts).astype(target.dtype)
    return out, tangent


def poisson_add(target, key, num_input, p, weight, impl: str = "auto", *, block=None):
    """Return ``target + weight * k`` with ``k ~ Binomial(num_input, p)`` i.i.d. per element.

    Exact: ``k`` is drawn by inversion of 64-bit fixed-point CDF tables, not by a
    normal approximation. Stateless and reproducible: element ``i`` uses the uniform
    word ``threefry2x32(key, i)`` of its global flat index, so the result depends only
    on ``key`` and the array, never on the device count or the implementation.

    Args:
        target: array of float16, bfloat16, float32 or float64, any shape (0-d and size
            0 included), each dimension below 2**32 and fewer than 2**63 elements. Integer and bool targets are refused.
        key: a JAX PRNG key (typed threefry key, or raw ``uint32[2]``). Use a new key
            per step.
        num_input: number of independent inputs, an integer in [1, 2**31 - 1].
        p: spike probability per input per step, in [0, 1]; ``freq * dt / 1000``.
            May be traced (time-varying rate, traced ``dt``, ``vmap`` over rates): the
            table is then built inside the compiled program (the ``bpp_binomial_table``
            custom call; a host callback only where no native library is loaded), equal
            to the table of the same constant ``p``; a run-time value outside [0, 1]
            (or NaN) yields NaN.
        weight: scalar weight (may be traced); non-finite values are refused when
            concrete.
        impl: ``"auto"`` (fused custom call where its native library is loaded for the
            platform and dtype, the reference otherwise), ``"fused"`` (error if
            unavailable) or ``"reference"`` (pure JAX).
        block: inside a ``shard_map`` (or ``pmap``) body, where ``target`` is this
            device's block of a bigger array: that block,
            ``shard_map_block(spec, target.shape)`` (see
            :func:`brainpy_poisson_plugin.shard_map_block`), so each device draws its
            block's share of the one-device result. ``None`` (the default) everywhere
            else; inside shard_map ``None`` is refused unless JAX shows the target to be
            the same on every device.

    Returns:
        The new target (same shape and dtype). Elements that receive ``0`` are returned
        bit-for-bit unchanged; ``p == 0`` or ``weight == 0`` leave the whole target
        unchanged; ``p == 1`` adds ``weight * num_input``. f16/bf16 targets accumulate
        in float32.

    Raises:
        TypeError / ValueError naming the argument and the bad value, before any work;
        ValueError for a call inside shard_map/pmap that is not given its ``block``.
    """
    check_impl(impl, FUNCTIONAL_IMPLS)
    if not hasattr(target, "shape") or not hasattr(target, "dtype"):
        raise TypeError(f"target must be an array, got target={target!r}")
    target = jnp.asarray(target)
    _check_target(target)
    n = check_num_input(num_input)
    _check_scalar("p", p)
    _check_scalar("weight", weight)
    if _is_concrete(weight) and not math.isfinite(float(weight)):
        raise ValueError(f"weight must be finite, got weight={float(weight)!r}")
    words = key_words(key)

    if _is_concrete(p):
        pf = float(p)
        if not (0.0 <= pf <= 1.0) or math.isnan(pf):
            raise ValueError(f"p must be in [0, 1], got p={pf!r}")
        thresholds, k0, size = _static_table(n, pf)
        thresholds = jnp.asarray(thresholds)
    else:
        thresholds, k0, size = _traced_table(n, p)

    layout, placement = resolve_layout(target, block)
    return _apply(
        impl, placement, target, jnp.asarray(weight), words, thresholds, jnp.asarray(k0), jnp.asarray(size), layout
    )
