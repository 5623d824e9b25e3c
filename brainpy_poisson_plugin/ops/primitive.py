"""The ``bpp_poisson_add`` JAX primitive and its transformation rules.

One primitive, one operand list (``target, key, thresholds, increments, layout``,
see ``docs/kernel-contract.md``) and two parameters: ``impl`` and ``placement`` (how the
layout was obtained, checked against manual mesh axes when lowering; see
:mod:`.sharding`). Its lowering
(:mod:`.lowering`) is the fused custom call where the native library is loaded for the
platform, and the pure-JAX reference everywhere else, so jit, vmap and the sharding
rule below are written once for both.

Differentiation is not defined here but one level up, with a custom JVP in
:mod:`.poisson_add` (the primitive only ever sees increments, not the weight).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.interpreters import batching

from ._jax_compat import Primitive

__all__ = [
    "LAYOUT_DTYPE",
    "MAX_DIMENSION",
    "MAX_ELEMENTS",
    "bind",
    "block_layout",
    "check_layout_shape",
    "layout_with_leading_dim",
    "layout_with_origin",
    "PLACEMENTS",
    "poisson_add_p",
    "shift_layout",
    "unsharded_layout",
]

#: The primitive. ``impl`` is ``"auto"``, ``"fused"`` or ``"reference"``.
poisson_add_p = Primitive("bpp_poisson_add")

#: The same operation on one shard's block; only appears inside the sharding rule's
#: lowering (``ops/sharding.py``), after all transformations have run.
poisson_add_local_p = Primitive("bpp_poisson_add_local")


# ---------------------------------------------------------------------------------------
# The layout operand: ``uint32[2, rank]``, row 0 the block's origin in the global array,
# row 1 the global array's dimensions (docs/kernel-contract.md). Built only by the helpers
# below, so that its encoding lives in one place. Every dimension (and so every origin) is
# below 2**32; the flat index they give is 64-bit (up to 2**63 elements in all).
# ---------------------------------------------------------------------------------------

#: dtype of the layout operand.
LAYOUT_DTYPE = np.uint32

#: Largest dimension a layout (and so a target) may have.
MAX_DIMENSION = 2**32 - 1

#: A global array must have fewer elements than this (flat indices are 64-bit).
MAX_ELEMENTS = 2**63


def check_layout_shape(shape: tuple[int, ...], name: str = "target") -> None:
    """Raise ``ValueError`` if an array of ``shape`` cannot be described by a layout:
    a dimension of 2**32 or more, or 2**63 or more elements. Reshaping such a 1-D array
    to 2-D (for example ``(2**33,)`` to ``(4, 2**31)``) keeps every element's flat index,
    so its draws are the same."""
    big = [d for d in shape if d > MAX_DIMENSION]
    if big:
        raise ValueError(
            f"{name} dimensions must be below 2**32, got {name}.shape={tuple(shape)}; reshape it (the draws depend "
            "on the flat index only, so e.g. (2**33,) -> (4, 2**31) gives the same result)"
        )
    if math.prod(shape) >= MAX_ELEMENTS:
        raise ValueError(f"{name} must have fewer than 2**63 elements, got {name}.shape={tuple(shape)}")


def unsharded_layout(shape: tuple[int, ...]) -> np.ndarray:
    """The layout of a whole (unsharded) array of ``shape``: origin 0, its own dims."""
    check_layout_shape(tuple(shape))
    return np.stack([np.zeros(len(shape), LAYOUT_DTYPE), np.asarray(shape, np.uint64).astype(LAYOUT_DTYPE)]).reshape(
        2, len(shape)
    )


def block_layout(origin, global_shape: tuple[int, ...]) -> jax.Array:
    """The layout of a block of a global array of ``global_shape`` whose first element is
    at ``origin`` (one integer per dimension; may be traced, e.g. built from
    ``lax.axis_index`` inside ``shard_map``; each below 2**32)."""
    check_layout_shape(tuple(global_shape), "global_shape")
    rank = len(global_shape)
    origin = jnp.asarray(origin).reshape(rank).astype(LAYOUT_DTYPE) if rank else jnp.zeros((0,), LAYOUT_DTYPE)
    return jnp.stack([origin, jnp.asarray(unsharded_layout(tuple(global_shape))[1])])


def layout_with_origin(layout, origin) -> jax.Array:
    """``layout`` with its origin row replaced by ``origin`` (one integer per dimension,
    may be traced)."""
    layout = jnp.asarray(layout)
    return jnp.stack(
        [jnp.asarray(origin).reshape(layout.shape[1]).astype(LAYOUT_DTYPE), layout[1].astype(LAYOUT_DTYPE)]
    )


def layout_with_leading_dim(layout, size: int, origin=0) -> jax.Array:
    """``layout`` of a block with a new leading dimension: the global array gains a
    leading axis of ``size`` and the block starts at index ``origin`` along it (0 for a
    whole batch under ``vmap``; may be traced)."""
    layout = jnp.asarray(layout).astype(LAYOUT_DTYPE)
    if size > MAX_DIMENSION:
        raise ValueError(f"the leading dimension must be below 2**32, got size={size}")
    lead_origin = jnp.asarray(origin).reshape(1).astype(LAYOUT_DTYPE)
    lead_dim = jnp.full((1,), size, LAYOUT_DTYPE)
    return jnp.stack([jnp.concatenate([lead_origin, layout[0]]), jnp.concatenate([lead_dim, layout[1]])])


def shift_layout(layout: jax.Array, offset) -> jax.Array:
    """``layout`` with ``offset`` (``int[rank]``, may be traced) added to its block origin."""
    layout = jnp.asarray(layout).astype(LAYOUT_DTYPE)
    return jnp.stack([layout[0] + jnp.asarray(offset).astype(LAYOUT_DTYPE), layout[1]])


#: ``placement`` parameter values: ``"whole"`` - the layout is the target's own (origin 0),
#: which is wrong for a block of a bigger array under manual mesh axes (shard_map, pmap);
#: ``"block"`` - the caller placed the block (``block=``); ``"replicated"`` - the layout is
#: the target's own and the target was seen to be the same on every device.
PLACEMENTS = ("whole", "block", "replicated")


def bind(target, key, thresholds, increments, layout, *, impl: str, placement: str = "whole"):
    """Apply the primitive (no argument checking: callers have validated)."""
    return poisson_add_p.bind(target, key, thresholds, increments, layout, impl=impl, placement=placement)


def _abstract_eval(target, key, thresholds, increments, layout, **params):
    return target


poisson_add_p.def_abstract_eval(_abstract_eval)
poisson_add_local_p.def_abstract_eval(_abstract_eval)


def _impl(*args, impl, placement):
    # Eager calls compile the same lowering as under jit.
    return jax.jit(bind, static_argnames=("impl", "placement"))(*args, impl=impl, placement=placement)


poisson_add_p.def_impl(_impl)


def _batch_rule(batched_args, batch_dims, *, impl, placement):
    """vmap: a batch element is a distinct set of neurons with draws of its own.

    The one rule, whatever is batched (target, key, table or increments, i.e. ``p`` or
    the weight):

    - unbatched key: batch element ``b`` gets the draws of row ``b`` of the stacked
      target, i.e. its counters are those of an array with a leading batch axis. With
      only the target batched this is one call on the stacked array, so
      ``vmap(f)(stack) == f(stack)`` bit for bit;
    - batched key: element ``b`` is exactly the unbatched call with its own key
      ``keys[b]`` (the user chose the keys, so equal keys give equal draws).

    A caller-placed block (``placement="block"``) loses its placement when vmap adds an
    axis the block does not place (the new axis starts at 0 on every device).
    """
    target, key, thresholds, increments, layout = batched_args
    t_bd, k_bd = batch_dims[0], batch_dims[1]
    not_mapped = None  # JAX marks an unbatched operand with a None batch dim
    size = next(a.shape[d] for a, d in zip(batched_args, batch_dims, strict=True) if d is not not_mapped)
    element_shape = tuple(n for i, n in enumerate(target.shape) if t_bd is not_mapped or i != t_bd)
    total = size * math.prod(element_shape)
    if k_bd is not_mapped and total >= MAX_ELEMENTS:
        raise ValueError(
            f"target: a vmap batch of {size} arrays of shape {element_shape} has {total} elements, "
            f"the counters address fewer than {MAX_ELEMENTS}; batch the key instead"
        )

    stacked = "whole" if placement == "block" else placement

    def lead(x, d):
        return jnp.moveaxis(x, d, 0) if d is not not_mapped else None

    mapped = [lead(a, d) for a, d in zip(batched_args, batch_dims, strict=True)]
    if mapped[0] is None:
        mapped[0] = jnp.broadcast_to(target, (size,) + target.shape)
    if all(m is None for m in mapped[1:]):
        # Only the target is batched: one call on the stacked array.
        return bind(
            mapped[0], key, thresholds, increments, layout_with_leading_dim(layout, size), impl=impl, placement=stacked
        ), 0

    def one(xs):
        index, rows = xs[0], xs[1:]
        args = [x if m is not None else a for x, m, a in zip(rows, mapped, batched_args, strict=True)]
        target_b, key_b, thresholds_b, increments_b, layout_b = args
        if k_bd is not_mapped:
            # Row `index` of the stacked batch: a (1, *shape) block of the (size, *shape) array.
            block = jnp.expand_dims(target_b, 0)
            row_layout = layout_with_leading_dim(layout_b, size, index)
            return bind(block, key_b, thresholds_b, increments_b, row_layout, impl=impl, placement=stacked)[0]
        return bind(target_b, key_b, thresholds_b, increments_b, layout_b, impl=impl, placement=placement)

    placeholder = jnp.zeros((size,), jnp.int8)
    xs = (jnp.arange(size, dtype=jnp.int32),) + tuple(m if m is not None else placeholder for m in mapped)
    return lax.map(one, xs), 0


batching.primitive_batchers[poisson_add_p] = _batch_rule
