"""Sharding rule of ``bpp_poisson_add``: each shard samples its own block, no gathers.

An element's random word depends only on the key and its *global* flat index, so a
shard can compute its part alone once it knows where its block starts. The primitive is
lowered, on programs with more than one device, through ``custom_partitioning``: the
result takes the target's sharding, the small operands (key, table, increments, layout)
are replicated, and each shard calls the same kernel on its local block with the
block's origin added to the layout (from ``lax.axis_index`` of the mesh axes that split
each dimension). The result equals the one-device result bit for bit, and the compiled
program contains no all-gather.
"""

from __future__ import annotations

import inspect
import math

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental.custom_partitioning import custom_partitioning
from jax.sharding import NamedSharding, PartitionSpec

from .primitive import shift_layout

__all__ = ["partitioned_call", "require_devices_during_lowering"]


def require_devices_during_lowering(primitive) -> None:
    """Ask JAX to lower programs containing ``primitive`` with their concrete devices.

    JAX lowers device-independently unless a primitive in the program needs the device
    assignment; ``custom_partitioning`` does, but ours only appears while our primitive
    is lowered, too late for JAX to notice. This registry is private JAX API
    (``jax._src.dispatch``), so it is used defensively: without it, multi-device
    programs fail to lower with a clear JAX error rather than silently diverge.
    """
    try:
        from jax._src import dispatch
    except ImportError:  # pragma: no cover
        return
    registry = getattr(dispatch, "prim_requires_devices_during_lowering", None)
    if registry is not None:
        registry.add(primitive)


def axes_of(entry) -> tuple[str, ...]:
    """The mesh axes one PartitionSpec entry splits a dimension over (major first)."""
    if entry is None:
        return ()
    if isinstance(entry, (tuple, list)):
        return tuple(entry)
    return (entry,)


def _shard_index(mesh, axes: tuple[str, ...]) -> jax.Array:
    """Linear index of this shard along one array dimension split over ``axes``."""
    index = jnp.uint32(0)
    for name in axes:
        index = index * mesh.shape[name] + lax.axis_index(name).astype(jnp.uint32)
    return index


def _target_sharding(mesh, arg_shapes):
    sharding = arg_shapes[0].sharding
    if not isinstance(sharding, NamedSharding):
        return NamedSharding(mesh, PartitionSpec())
    return sharding


def _make(impl: str, local_bind):
    @custom_partitioning
    def call(target, key, thresholds, increments, layout):
        return local_bind(target, key, thresholds, increments, layout, impl)

    def infer(mesh, arg_shapes, result_shape):
        return _target_sharding(mesh, arg_shapes)

    def partition(mesh, arg_shapes, result_shape):
        global_shape = arg_shapes[0].shape
        spec = tuple(_target_sharding(mesh, arg_shapes).spec)
        spec = spec + (None,) * (len(global_shape) - len(spec))
        # A dimension that does not split evenly is kept whole (XLA would pad it, and a
        # padded block's origin is not block * index).
        spec = tuple(
            e if not axes_of(e) or global_shape[d] % math.prod(mesh.shape[a] for a in axes_of(e)) == 0 else None
            for d, e in enumerate(spec)
        )
        target_sharding = NamedSharding(mesh, PartitionSpec(*spec))
        replicated = NamedSharding(mesh, PartitionSpec())

        def lower(target, key, thresholds, increments, layout):
            offset = []
            for d, entry in enumerate(spec):
                axes = axes_of(entry)
                block = global_shape[d] // math.prod(mesh.shape[a] for a in axes)
                offset.append(_shard_index(mesh, axes) * block if axes else jnp.uint32(0))
            local_layout = shift_layout(layout, jnp.stack(offset)) if offset else layout
            return local_bind(target, key, thresholds, increments, local_layout, impl)

        arg_shardings = (target_sharding, replicated, replicated, replicated, replicated)
        return mesh, lower, target_sharding, arg_shardings

    kwargs = dict(infer_sharding_from_operands=infer, partition=partition)
    if "sharding_rule" in inspect.signature(call.def_partition).parameters:
        kwargs["sharding_rule"] = _shardy_rule
    call.def_partition(**kwargs)
    return call


def _shardy_rule(mesh, value_types, result_types):
    """Shardy rule: the target's dims are the result's; the small operands have factors
    of their own that must stay replicated."""
    rank = len(value_types[0].shape)
    dims = " ".join(f"i{d}" for d in range(rank))
    rule = f"{dims}, k, t u, c, l m -> {dims}"
    return rule, {"need_replication_factors": ("k", "t", "u", "c", "l", "m")}


_CACHE: dict = {}


def partitioned_call(impl: str, local_bind):
    """The ``custom_partitioning`` wrapper for ``impl`` (cached per impl)."""
    fn = _CACHE.get(impl)
    if fn is None:
        fn = _CACHE[impl] = _make(impl, local_bind)
    return fn
