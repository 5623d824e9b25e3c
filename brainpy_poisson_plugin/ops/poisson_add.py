"""``poisson_add``: the functional core, for users inside or outside BrainPy.

``poisson_add(target, key, num_input, p, weight)`` returns ``target + weight * k`` with
an independent ``k ~ Binomial(num_input, p)`` per element, exactly (table inversion) and
reproducibly (counter-based: the draws depend only on the key and each element's global
position). Arguments are checked before any work. Differentiable in ``target`` (the
identity) and ``weight`` (the counts) through a custom JVP.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import config
from ..checks import (
    FUNCTIONAL_IMPLS,
    check_impl,
    check_key,
    check_num_input,
    check_probability,
    check_target_dtype,
    check_weight,
    is_traced,
)
from ..sampling.reference import compute_dtype
from ..sampling.tables import binomial_table
from . import lowering  # noqa: F401  (registers the lowering rules)
from .blocks import resolve_layout
from .device_table import traced_table
from .primitive import bind, check_layout_shape

__all__ = ["poisson_add", "prepare_poisson_add", "PreparedPoissonAdd", "key_words", "resolve_impl", "FUNCTIONAL_IMPLS"]


def key_words(key) -> jax.Array:
    """Return a PRNG key as the raw ``u32[2]`` threefry words the sampler uses.

    Any key implementation is accepted (see :func:`brainpy_poisson_plugin.checks.check_key`):
    threefry keys give their own words, others (``rbg``) words derived from their data.
    """
    return check_key(key)


def resolve_impl(impl: str) -> str:
    """The implementation ``poisson_add`` uses for ``impl``.

    ``"auto"`` resolves through the process default (:func:`brainpy_poisson_plugin.default_impl`:
    ``set_default_impl``, ``using_impl``, ``BRAINPY_POISSON_IMPL``, ``pytest
    --brainpy-poisson``), where ``"host"`` (BrainPy's own class, which has no functional
    form) means ``"auto"``. Resolved when the call is traced.
    """
    check_impl(impl, FUNCTIONAL_IMPLS)
    if impl != "auto":
        return impl
    default = config.default_impl()
    return "auto" if default == "host" else default


def _check_target(target) -> jax.Array:
    if not hasattr(target, "shape") or not hasattr(target, "dtype"):
        raise TypeError(f"target must be an array, got target={target!r}")
    check_target_dtype(target.dtype, name="target")
    check_layout_shape(tuple(target.shape))
    return jnp.asarray(target)


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


def _increments(weight, counts) -> jax.Array:
    """``weight * count`` per count index, exactly ``0`` where the count is 0.

    ``0 * weight`` is 0 even for a (traced) non-finite weight: an element that drew no
    spike is left unchanged, never made NaN.
    """
    return jnp.where(counts == 0, jnp.zeros((), counts.dtype), weight * counts)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0, 1))
def _apply(impl, placement, target, weight, key, thresholds, k0, size, layout):
    cdt = compute_dtype(target.dtype)
    counts = _count_values(k0, size, thresholds.shape[0], cdt)
    return bind(target, key, thresholds, _increments(weight, counts), layout, impl=impl, placement=placement)


@_apply.defjvp
def _apply_jvp(impl, placement, primals, tangents):
    target, weight, key, thresholds, k0, size, layout = primals
    t_dot, w_dot = tangents[:2]
    out = _apply(impl, placement, *primals)
    cdt = compute_dtype(target.dtype)
    # The same key and counters give the same counts: draw them again with weight 1.
    counts = bind(
        jnp.zeros(target.shape, cdt),
        key,
        thresholds,
        _count_values(k0, size, thresholds.shape[0], cdt),
        layout,
        impl=impl,
        placement=placement,
    )
    tangent = t_dot + (w_dot * counts).astype(target.dtype)
    return out, tangent


@dataclasses.dataclass(frozen=True)
class PreparedPoissonAdd:
    """A checked ``poisson_add`` call waiting for its key (:func:`prepare_poisson_add`).

    Everything but the key has been validated, so a caller that draws the key from a
    stateful RNG (``PoissonInput``) can check first and advance the RNG only then.
    """

    target: Any
    impl: str
    weight: Any
    thresholds: Any
    k0: Any
    size: Any
    layout: Any
    placement: str

    def apply(self, key) -> jax.Array:
        """Add the draws of ``key`` (checked here) and return the new target."""
        words = check_key(key)
        return _apply(
            self.impl,
            self.placement,
            self.target,
            self.weight,
            words,
            self.thresholds,
            jnp.asarray(self.k0),
            jnp.asarray(self.size),
            self.layout,
        )


def prepare_poisson_add(target, num_input, p, weight, impl: str = "auto", *, block=None) -> PreparedPoissonAdd:
    """Check every argument of :func:`poisson_add` but the key, place the block and build the table.

    Raises the same errors as :func:`poisson_add`, before any work; the key is checked by
    :meth:`PreparedPoissonAdd.apply`.
    """
    impl = resolve_impl(impl)
    target = _check_target(target)
    n = check_num_input(num_input)
    p = check_probability(p, name="p")
    w = check_weight(weight, target.dtype, name="weight")
    cdt = compute_dtype(target.dtype)
    # A Python number or any traced dtype (an integer weight included) becomes the
    # compute dtype here, so the custom JVP always sees a float weight.
    weight_array = jnp.asarray(w, cdt) if not is_traced(w) else jnp.asarray(w).astype(cdt)
    if not is_traced(p):
        thresholds, k0, size = _static_table(n, p)
        thresholds = jnp.asarray(thresholds)
    else:
        thresholds, k0, size = _traced_table(n, p)
    layout, placement = resolve_layout(target, block)
    return PreparedPoissonAdd(target, impl, weight_array, thresholds, k0, size, layout, placement)


def poisson_add(target, key, num_input, p, weight, impl: str = "auto", *, block=None):
    """Return ``target + weight * k`` with ``k ~ Binomial(num_input, p)`` i.i.d. per element.

    Exact: ``k`` is drawn by inversion of 64-bit fixed-point CDF tables, not by a
    normal approximation. Stateless and reproducible: element ``i`` uses the uniform
    word ``threefry2x32(key, i)`` of its global flat index, so the result depends only
    on ``key`` and the array, never on the device count or the implementation.

    Args:
        target: array of float16, bfloat16, float32 or float64, any shape (0-d and size
            0 included), each dimension below 2**32 and fewer than 2**63 elements. Integer, bool, complex and float8
            targets are refused.
        key: a JAX PRNG key of any implementation (a typed key, or raw ``uint32`` key
            data such as ``jax.random.PRNGKey``); ``rbg`` keys are turned into threefry
            words deterministically. Use a new key per step.
        num_input: number of independent inputs, an integer in [1, 2**31 - 1].
        p: spike probability per input per step, in [0, 1]; ``freq * dt / 1000``.
            A concrete value (Python or numpy number, or a 0-d array) is the number it
            is, checked now and used in float64. Only a traced ``p`` (a time-varying
            rate, a traced ``dt``, ``vmap`` over rates) builds its table at run time,
            inside the compiled program (the ``bpp_binomial_table`` custom call; a host
            callback only where no native library is loaded), equal to the table of the
            same constant ``p``; a run-time value outside [0, 1] (or NaN) yields NaN.
        weight: scalar weight (may be traced). A concrete weight must be finite in the
            target's dtype (``4e38`` is refused on float32). An element that draws no
            spike is left unchanged whatever the weight.
        impl: ``"auto"`` (the process default, see :func:`resolve_impl`; by default the
            fused custom call where its native library is loaded for the platform and
            dtype, the reference otherwise), ``"fused"`` (error if unavailable) or
            ``"reference"`` (pure JAX).
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

    Under ``jax.vmap`` a batch element is a distinct set of neurons: with an unbatched
    key, element ``b`` gets the draws of row ``b`` of the stacked target (whatever else
    is batched); with a batched key, each element is the call with its own key.

    Raises:
        TypeError / ValueError naming the argument and the bad value, before any work;
        ValueError for a call inside shard_map/pmap that is not given its ``block``.
    """
    return prepare_poisson_add(target, num_input, p, weight, impl, block=block).apply(key)
