"""Where a call's block sits in the global array, under ``shard_map`` and ``pmap``.

An element's random word depends on the key and its *global* flat index. Under
automatic sharding (``jit`` over sharded arrays) the sharding rule of :mod:`.sharding`
knows each shard's place. Inside a ``shard_map`` (or ``pmap``) body JAX hands the
function only the local block, and nothing in the block says where it came from: a call
that indexed its block from 0 would give every device the same draws. So there a call
must be told its block (:func:`shard_map_block`, passed as ``poisson_add(..., block=)``),
or its target must be seen to be replicated (the same on every device); otherwise it is
refused, at trace time and again when lowering (:func:`check_lowering_placement`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import PartitionSpec

from ._jax_compat import axis_size, manual_axes, register_replication_rule, varying_axes
from .primitive import block_layout, poisson_add_p, unsharded_layout
from .sharding import axes_of

__all__ = ["Block", "check_lowering_placement", "resolve_layout", "shard_map_block"]

register_replication_rule(poisson_add_p)

_INT32_MAX = 2**31 - 1
_DOCS = "see docs/many-devices.md"


@jax.tree_util.register_pytree_node_class
@dataclasses.dataclass(frozen=True)
class Block:
    """A block of a bigger array: where its first element sits and the whole array's shape.

    Made by :func:`shard_map_block` inside a ``shard_map`` body; or by hand,
    ``Block(origin, global_shape)``, for any other way of splitting an array (one call per
    piece gives the same bits as one call on the whole).

    Attributes:
        origin: ``int32[rank]`` index of the block's first element (may be traced).
        global_shape: the whole array's shape (static ints).
    """

    origin: Any
    global_shape: tuple[int, ...]

    def tree_flatten(self):
        return (self.origin,), self.global_shape

    @classmethod
    def tree_unflatten(cls, global_shape, children):
        return cls(children[0], global_shape)


def _spec_entries(spec, rank: int, name: str = "spec") -> tuple:
    if not isinstance(spec, PartitionSpec):
        raise TypeError(f"{name} must be a jax.sharding.PartitionSpec, got {name}={spec!r}")
    entries = tuple(spec)
    if len(entries) > rank:
        raise ValueError(f"{name}={spec} has {len(entries)} entries, more than the block's rank {rank}")
    return entries + (None,) * (rank - len(entries))


def _local_shape(local) -> tuple[int, ...]:
    shape = getattr(local, "shape", local)
    try:
        dims = tuple(int(d) for d in shape)
    except TypeError:
        raise TypeError(f"local_shape must be an array or a tuple of ints, got local_shape={local!r}") from None
    if any(d < 0 for d in dims):
        raise ValueError(f"local_shape must have non-negative dims, got local_shape={dims}")
    return dims


def shard_map_block(spec: PartitionSpec, local_shape) -> Block:
    """This device's :class:`Block` of an array split by ``spec``: call it inside the
    ``shard_map`` (or ``pmap``) body, and pass it as ``poisson_add(..., block=)``.

    ``spec`` is the target's ``PartitionSpec`` in the shard_map (its ``in_specs`` /
    ``out_specs`` entry); a dimension split over several mesh axes, ``P(("x", "y"))``, is
    split over them major first, as JAX does. ``P()`` declares a replicated target (the
    whole array on every device). The block's origin comes from ``lax.axis_index`` of
    the named axes, the global shape from ``local_shape`` times the axis sizes, so the
    result equals the one-device result on the global array bit for bit.

    Args:
        spec: the target's ``jax.sharding.PartitionSpec`` inside the shard_map.
        local_shape: the local block's shape (or the local array itself).

    Returns:
        A :class:`Block`.

    Raises:
        TypeError / ValueError: ``spec`` is not a PartitionSpec, has more entries than
            the block has dims, names an axis that is not a manual mesh axis here, or
            the global array would be too large.
    """
    shape = _local_shape(local_shape)
    entries = _spec_entries(spec, len(shape))
    manual = manual_axes()
    origin, global_shape = [], []
    for d, entry in enumerate(entries):
        axes = axes_of(entry)
        for a in axes:
            if a not in manual:
                raise ValueError(
                    f"spec={spec} names mesh axis {a!r}, which is not a manual axis where "
                    f"shard_map_block is called (manual axes here: {sorted(map(str, manual))}); "
                    f"call it inside the shard_map body over that axis"
                )
        index = jnp.int32(0)
        count = 1
        for a in axes:
            size = axis_size(a)
            index = index * size + lax.axis_index(a).astype(jnp.int32)
            count *= size
        global_shape.append(shape[d] * count)
        if global_shape[-1] > _INT32_MAX:
            raise ValueError(f"spec={spec}: global dimension {d} has {global_shape[-1]} elements, more than 2**31 - 1")
        origin.append(index * shape[d])
    origin_array = jnp.stack(origin) if origin else jnp.zeros((0,), jnp.int32)
    return Block(origin_array, tuple(global_shape))


def _check_block(block, shape: tuple[int, ...]) -> None:
    if not isinstance(block, Block):
        raise TypeError(f"block must be a Block (from shard_map_block), got block={block!r}")
    gshape = tuple(block.global_shape)
    if len(gshape) != len(shape):
        raise ValueError(f"block has global shape {gshape}, of rank {len(gshape)}, but target has shape {shape}")
    if any(int(g) < int(t) for g, t in zip(gshape, shape)):
        raise ValueError(f"block's global shape {gshape} is smaller than target.shape={shape}")
    if math.prod(gshape) >= 2**32:
        raise ValueError(f"block's global array must have fewer than 2**32 elements, got global shape {gshape}")
    origin = block.origin
    if tuple(getattr(origin, "shape", (len(gshape),))) != (len(gshape),):
        raise ValueError(f"block.origin must have shape ({len(gshape)},), got {getattr(origin, 'shape', None)}")
    if not isinstance(origin, jax.core.Tracer):
        values = [int(v) for v in jnp.asarray(origin).reshape(-1)]
        if any(v < 0 or v + t > g for v, t, g in zip(values, shape, gshape)):
            raise ValueError(f"block.origin={values} places target.shape={shape} outside the global shape {gshape}")


def _refusal(axes) -> str:
    names = ", ".join(repr(a) for a in sorted(map(str, axes)))
    return (
        f"poisson_add is called with manual mesh axes ({names}: inside shard_map or pmap) on a "
        f"target that may differ between devices, without block=: every device would index its "
        f"block from 0 and draw the same numbers. Pass block=shard_map_block(spec, target.shape), "
        f"spec being the target's PartitionSpec in the shard_map (P() for a target that is the "
        f"same on every device); PoissonInput takes shard_map_spec=spec. Or use jit on sharded "
        f"arrays (automatic sharding), which places each block itself; {_DOCS}"
    )


def resolve_layout(target, block) -> tuple[jax.Array, str]:
    """The layout and placement of one call on ``target`` (``block`` from the caller, or
    ``None``). Raises ``ValueError`` for a call under manual mesh axes that cannot be
    placed (a target not known to be replicated, no ``block``)."""
    shape = tuple(target.shape)
    if block is not None:
        _check_block(block, shape)
        return block_layout(block.origin, tuple(int(g) for g in block.global_shape)), "block"
    layout = jnp.asarray(unsharded_layout(shape))
    axes = manual_axes()
    if not axes:
        return layout, "whole"
    varying = varying_axes(target)
    if varying is None or varying & axes:
        raise ValueError(_refusal(axes))
    return layout, "replicated"


def manual_axes_of_lowering(ctx) -> tuple:
    """The manual mesh axes of a lowering context (shard_map's, or pmap's axis names)."""
    axis_context = ctx.module_context.axis_context
    kind = type(axis_context).__name__
    if kind == "SPMDAxisContext":
        return tuple(getattr(axis_context, "manual_axes", ()) or ())
    if kind == "ReplicaAxisContext":
        return tuple(getattr(axis_context.axis_env, "names", ()) or ())
    return ()


def check_lowering_placement(ctx, placement: str) -> None:
    """Backstop for calls bound without :func:`resolve_layout` seeing their manual axes
    (a jaxpr built outside and evaluated inside shard_map, vmap over a placed call):
    refuse an unplaced call lowered under manual mesh axes."""
    axes = manual_axes_of_lowering(ctx)
    if axes and placement == "whole":
        raise ValueError(
            _refusal(axes) + ". (Under vmap inside shard_map, call poisson_add on the batched local "
            "array with its own block instead: the vmapped axis has no place in the global array.)"
        )
