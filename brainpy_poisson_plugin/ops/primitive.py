"""The ``bpp_poisson_add`` JAX primitive and its transformation rules.

One primitive, one operand list (``target, key, thresholds, increments, layout``,
see ``docs/kernel-contract.md``) and one parameter, ``impl``. Its lowering
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

__all__ = ["poisson_add_p", "bind", "unsharded_layout", "batched_layout", "MAX_ELEMENTS"]

#: The counters address fewer than this many elements of one (global, batched) array.
MAX_ELEMENTS = 2**32

#: The primitive. ``impl`` is ``"auto"``, ``"fused"`` or ``"reference"``.
poisson_add_p = Primitive("bpp_poisson_add")

#: The same operation on one shard's block; only appears inside the sharding rule's
#: lowering (``ops/sharding.py``), after all transformations have run.
poisson_add_local_p = Primitive("bpp_poisson_add_local")


def unsharded_layout(shape: tuple[int, ...]) -> np.ndarray:
    """The ``i32[2, rank]`` layout of a whole (unsharded) array: origin 0, its own dims."""
    return np.stack([np.zeros(len(shape), np.int32), np.asarray(shape, np.int32)]).reshape(2, len(shape))


def batched_layout(layout, batch_size: int, index) -> jax.Array:
    """The layout of batch element ``index`` of ``batch_size`` blocks stacked on a new leading axis.

    ``layout`` is the layout of one element; the result places that block at row
    ``index`` of a global array with a leading axis of ``batch_size`` (``index`` may be
    traced). With ``index=0`` it is also the layout of the whole stacked batch.
    """
    layout = jnp.asarray(layout)
    origin = jnp.concatenate([jnp.reshape(jnp.asarray(index, layout.dtype), (1,)), layout[0]])
    dims = jnp.concatenate([jnp.full((1,), batch_size, layout.dtype), layout[1]])
    return jnp.stack([origin, dims])


def bind(target, key, thresholds, increments, layout, *, impl: str):
    """Apply the primitive (no argument checking: callers have validated)."""
    return poisson_add_p.bind(target, key, thresholds, increments, layout, impl=impl)


def _abstract_eval(target, key, thresholds, increments, layout, *, impl):
    return target


poisson_add_p.def_abstract_eval(_abstract_eval)
poisson_add_local_p.def_abstract_eval(_abstract_eval)


def _impl(*args, impl):
    # Eager calls compile the same lowering as under jit.
    return jax.jit(bind, static_argnames="impl")(*args, impl=impl)


poisson_add_p.def_impl(_impl)


def _batch_rule(batched_args, batch_dims, *, impl):
    """vmap: a batch element is a distinct set of neurons with draws of its own.

    The one rule, whatever is batched (target, key, table or increments, i.e. ``p`` or
    the weight):

    - unbatched key: batch element ``b`` gets the draws of row ``b`` of the stacked
      target, i.e. its counters are those of an array with a leading batch axis. With
      only the target batched this is one call on the stacked array, so
      ``vmap(f)(stack) == f(stack)`` bit for bit;
    - batched key: element ``b`` is exactly the unbatched call with its own key
      ``keys[b]`` (the user chose the keys, so equal keys give equal draws).
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

    def lead(x, d):
        return jnp.moveaxis(x, d, 0) if d is not not_mapped else None

    mapped = [lead(a, d) for a, d in zip(batched_args, batch_dims, strict=True)]
    if mapped[0] is None:
        mapped[0] = jnp.broadcast_to(target, (size,) + target.shape)
    if all(m is None for m in mapped[1:]):
        # Only the target is batched: one call on the stacked array.
        return bind(mapped[0], key, thresholds, increments, batched_layout(layout, size, 0), impl=impl), 0

    def one(xs):
        index, rows = xs[0], xs[1:]
        args = [x if m is not None else a for x, m, a in zip(rows, mapped, batched_args, strict=True)]
        if k_bd is not_mapped:
            # Row `index` of the stacked batch: a (1, *shape) block of the (size, *shape) array.
            block = jnp.expand_dims(args[0], 0)
            layout_b = batched_layout(args[4], size, index)
            return bind(block, *args[1:4], layout_b, impl=impl)[0]
        return bind(*args, impl=impl)

    placeholder = jnp.zeros((size,), jnp.int8)
    xs = (jnp.arange(size, dtype=jnp.int32),) + tuple(m if m is not None else placeholder for m in mapped)
    return lax.map(one, xs), 0


batching.primitive_batchers[poisson_add_p] = _batch_rule
