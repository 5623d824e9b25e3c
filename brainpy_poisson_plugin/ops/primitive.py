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

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.interpreters import batching

try:  # jax >= 0.4.36
    from jax.extend.core import Primitive
except ImportError:  # pragma: no cover
    from jax.core import Primitive  # type: ignore[no-redef]

__all__ = ["poisson_add_p", "bind", "unsharded_layout"]

#: The primitive. ``impl`` is ``"auto"``, ``"fused"`` or ``"reference"``.
poisson_add_p = Primitive("bpp_poisson_add")

#: The same operation on one shard's block; only appears inside the sharding rule's
#: lowering (``ops/sharding.py``), after all transformations have run.
poisson_add_local_p = Primitive("bpp_poisson_add_local")


def unsharded_layout(shape: tuple[int, ...]) -> np.ndarray:
    """The ``i32[2, rank]`` layout of a whole (unsharded) array: origin 0, its own dims."""
    return np.stack([np.zeros(len(shape), np.int32), np.asarray(shape, np.int32)]).reshape(2, len(shape))


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
    """vmap: draws are independent per batch element.

    With only the target batched, the batch axis simply becomes the leading axis of one
    bigger array, so element ``(b, i)`` gets its own counter and
    ``vmap(f)(stack) == f(stack)`` bit for bit. When a key, table or increment is
    batched, each batch element is one call of its own (``lax.map``).
    """
    target, key, thresholds, increments, layout = batched_args
    t_bd, k_bd, th_bd, inc_bd, lay_bd = batch_dims
    not_mapped = None  # JAX marks an unbatched operand with a None batch dim
    if k_bd is not_mapped and th_bd is not_mapped and inc_bd is not_mapped and lay_bd is not_mapped:
        target = jnp.moveaxis(target, t_bd, 0)
        origin = jnp.concatenate([jnp.zeros((1,), jnp.int32), layout[0]])
        dims = jnp.concatenate([jnp.full((1,), target.shape[0], jnp.int32), layout[1]])
        out = bind(target, key, thresholds, increments, jnp.stack([origin, dims]), impl=impl)
        return out, 0
    size = next(a.shape[d] for a, d in zip(batched_args, batch_dims) if d is not not_mapped)

    def lead(x, d):
        return jnp.moveaxis(x, d, 0) if d is not not_mapped else None

    mapped = [lead(a, d) for a, d in zip(batched_args, batch_dims)]
    if mapped[0] is None:
        mapped[0] = jnp.broadcast_to(target, (size,) + target.shape)

    def one(xs):
        args = [x if m is not None else a for x, m, a in zip(xs, mapped, batched_args)]
        return bind(*args, impl=impl)

    xs = tuple(m if m is not None else jnp.zeros((size,), jnp.int8) for m in mapped)
    return lax.map(one, xs), 0


batching.primitive_batchers[poisson_add_p] = _batch_rule
