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

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.interpreters import batching

try:  # jax >= 0.4.36
    from jax.extend.core import Primitive
except ImportError:  # pragma: no cover
    from jax.core import Primitive  # type: ignore[no-redef]

__all__ = ["poisson_add_p", "bind", "unsharded_layout", "block_layout", "shift_layout", "PLACEMENTS"]

#: The primitive. ``impl`` is ``"auto"``, ``"fused"`` or ``"reference"``.
poisson_add_p = Primitive("bpp_poisson_add")

#: The same operation on one shard's block; only appears inside the sharding rule's
#: lowering (``ops/sharding.py``), after all transformations have run.
poisson_add_local_p = Primitive("bpp_poisson_add_local")


def unsharded_layout(shape: tuple[int, ...]) -> np.ndarray:
    """The ``i32[2, rank]`` layout of a whole (unsharded) array: origin 0, its own dims."""
    return np.stack([np.zeros(len(shape), np.int32), np.asarray(shape, np.int32)]).reshape(2, len(shape))


def block_layout(origin, global_shape: tuple[int, ...]) -> jax.Array:
    """The layout of a block whose first element sits at ``origin`` (``int[rank]``, may be
    traced) of an array of ``global_shape``. Layouts are built only here and in
    :func:`unsharded_layout` / :func:`shift_layout`, so their encoding lives in this module."""
    rank = len(global_shape)
    origin = jnp.asarray(origin, jnp.int32).reshape(rank)
    return jnp.stack([origin, jnp.asarray(np.asarray(global_shape, np.int32).reshape(rank))])


def shift_layout(layout: jax.Array, offset) -> jax.Array:
    """``layout`` with ``offset`` (``int[rank]``, may be traced) added to its block origin."""
    return jnp.stack([layout[0] + jnp.asarray(offset, jnp.int32), layout[1]])


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
    """vmap: draws are independent per batch element.

    With only the target batched, the batch axis simply becomes the leading axis of one
    bigger array, so element ``(b, i)`` gets its own counter and
    ``vmap(f)(stack) == f(stack)`` bit for bit. When a key, table or increment is
    batched, each batch element is one call of its own (``lax.map``).

    A caller-placed block (``placement="block"``) loses its placement when vmap adds an
    axis the block does not place (the new axis starts at 0 on every device).
    """
    target, key, thresholds, increments, layout = batched_args
    t_bd, k_bd, th_bd, inc_bd, lay_bd = batch_dims
    not_mapped = None  # JAX marks an unbatched operand with a None batch dim
    if k_bd is not_mapped and th_bd is not_mapped and inc_bd is not_mapped and lay_bd is not_mapped:
        target = jnp.moveaxis(target, t_bd, 0)
        origin = jnp.concatenate([jnp.zeros((1,), jnp.int32), layout[0]])
        dims = jnp.concatenate([jnp.full((1,), target.shape[0], jnp.int32), layout[1]])
        placed = "whole" if placement == "block" else placement
        out = bind(target, key, thresholds, increments, jnp.stack([origin, dims]), impl=impl, placement=placed)
        return out, 0
    size = next(a.shape[d] for a, d in zip(batched_args, batch_dims) if d is not not_mapped)

    def lead(x, d):
        return jnp.moveaxis(x, d, 0) if d is not not_mapped else None

    mapped = [lead(a, d) for a, d in zip(batched_args, batch_dims)]
    if mapped[0] is None:
        mapped[0] = jnp.broadcast_to(target, (size,) + target.shape)

    def one(xs):
        args = [x if m is not None else a for x, m, a in zip(xs, mapped, batched_args)]
        return bind(*args, impl=impl, placement=placement)

    xs = tuple(m if m is not None else jnp.zeros((size,), jnp.int8) for m in mapped)
    return lax.map(one, xs), 0


batching.primitive_batchers[poisson_add_p] = _batch_rule
