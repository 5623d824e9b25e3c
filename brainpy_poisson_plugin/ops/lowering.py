"""Lowering of ``bpp_poisson_add``: the fused custom call, or the reference.

Each platform gets one rule. It emits the ``bpp_poisson_add`` FFI custom call (result
aliased to the target, so the update is in place) when ``impl`` is ``"fused"`` or
``"auto"`` and the native library for that platform is loaded, and otherwise inlines
the pure-JAX reference. In a program partitioned over several devices the call goes
through the sharding rule of :mod:`.sharding` first, which lowers each shard's block
with the same per-block rule; under shard_map/pmap an unplaced call is refused
(:func:`.blocks.check_lowering_placement`). ``impl="fused"`` without a native library
is an error, raised while lowering (before anything runs).
"""

from __future__ import annotations

from jax.interpreters import mlir

from ..sampling.reference import reference_poisson_add
from . import native
from ._jax_compat import jax_ffi
from .blocks import check_lowering_placement
from .primitive import poisson_add_local_p, poisson_add_p
from .sharding import partitioned_call, require_devices_during_lowering

__all__ = ["register"]

_reference_rule = mlir.lower_fun(
    lambda target, key, thresholds, increments, layout, **params: reference_poisson_add(
        target, key, thresholds, increments, layout
    ),
    multiple_results=False,
)

_fused_rule = jax_ffi.ffi_lowering(native.TARGET_NAME, operand_output_aliases={0: 0})

#: Dtypes each platform's kernel implements.
FUSED_DTYPES = {
    "cpu": ("float32", "float64"),
    "cuda": ("float16", "bfloat16", "float32", "float64"),
}


def uses_fused(platform: str, impl: str, dtype) -> bool:
    """Whether a call with ``impl`` on ``platform`` for a target of ``dtype`` runs fused.

    Raises ``RuntimeError`` for ``impl="fused"`` where no fused kernel exists.
    """
    if impl == "reference":
        return False
    supported = str(dtype) in FUSED_DTYPES.get(platform, ()) and native.available(platform)
    if impl == "fused" and not supported:
        reason = native.load_error() or "no kernel for this platform and dtype"
        raise RuntimeError(
            f"impl='fused' requested for a {dtype} target on platform {platform!r}, but the "
            f"fused kernel is unavailable there ({reason}); use impl='auto' or 'reference'"
        )
    return supported


def _local_rule_for(platform: str):
    """Lowering of one block: the custom call or the reference, nothing else."""

    def rule(ctx, target, key, thresholds, increments, layout, *, impl):
        if uses_fused(platform, impl, ctx.avals_in[0].dtype):
            return _fused_rule(ctx, target, key, thresholds, increments, layout)
        return _reference_rule(ctx, target, key, thresholds, increments, layout, impl=impl)

    return rule


def _is_multi_device(ctx) -> bool:
    """True when lowering a jit program partitioned over more than one device by XLA
    (not inside shard_map, where each call already sees only its own block)."""
    axis_context = ctx.module_context.axis_context
    return type(axis_context).__name__ == "ShardingContext" and getattr(axis_context, "num_devices", 1) > 1


def _bind_local(target, key, thresholds, increments, layout, impl):
    return poisson_add_local_p.bind(target, key, thresholds, increments, layout, impl=impl)


def _rule_for(platform: str | None):
    local = _local_rule_for(platform) if platform else _reference_rule

    def rule(ctx, target, key, thresholds, increments, layout, *, impl, placement):
        if _is_multi_device(ctx):
            sharded = mlir.lower_fun(partitioned_call(impl, _bind_local), multiple_results=False)
            return sharded(ctx, target, key, thresholds, increments, layout)
        check_lowering_placement(ctx, placement)  # shard_map/pmap: refuse an unplaced block
        return local(ctx, target, key, thresholds, increments, layout, impl=impl)

    return rule


def register() -> None:
    """Register the lowering rules (idempotent; called on import of :mod:`brainpy_poisson_plugin.ops`)."""
    require_devices_during_lowering(poisson_add_p)
    mlir.register_lowering(poisson_add_p, _rule_for(None))
    mlir.register_lowering(poisson_add_local_p, _reference_rule)
    for platform in FUSED_DTYPES:
        mlir.register_lowering(poisson_add_p, _rule_for(platform), platform=platform)
        mlir.register_lowering(poisson_add_local_p, _local_rule_for(platform), platform=platform)


register()
