"""The few JAX APIs whose home moved between the supported jax releases (0.4.38 .. 0.12).

Everything version-dependent about JAX is resolved here, once, so the rest of the
package imports plain names from this module:

- ``jax_ffi``: ``jax.ffi`` (``jax.extend.ffi`` on jax 0.4.38);
- ``Primitive``: ``jax.extend.core.Primitive`` (``jax.core.Primitive`` before 0.4.36);
- ``Tracer``: the class of every traced value;
- ``threefry_2x32``: ``jax.extend.random.threefry_2x32``, the per-element RNG.
"""

from __future__ import annotations

import jax

try:  # jax >= 0.4.39
    from jax import ffi as jax_ffi
except ImportError:  # pragma: no cover - jax 0.4.38
    from jax.extend import ffi as jax_ffi  # type: ignore[no-redef,attr-defined]

try:  # jax >= 0.4.36
    from jax.extend.core import Primitive
except ImportError:  # pragma: no cover
    from jax.core import Primitive  # type: ignore[no-redef,attr-defined]

from jax.core import Tracer
from jax.extend.random import threefry_2x32

__all__ = [
    "Primitive",
    "Tracer",
    "axis_size",
    "jax",
    "jax_ffi",
    "manual_axes",
    "register_replication_rule",
    "shard_map",
    "threefry_2x32",
    "varying_axes",
]


# --- shard_map and manual mesh axes (shard_map moved and its flags were renamed) -------------


def shard_map(f, *, mesh, in_specs, out_specs, check_vma: bool = True):
    """``shard_map`` of the installed jax, with its replication check under today's name.

    ``jax.shard_map`` (``check_vma=``) where it exists, else
    ``jax.experimental.shard_map.shard_map`` (``check_rep=``, jax 0.4.x).
    """
    new = getattr(jax, "shard_map", None)
    if new is not None:
        return new(f, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=check_vma)
    from jax.experimental.shard_map import shard_map as old  # pragma: no cover - jax 0.4.x

    return old(f, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_rep=check_vma)


def manual_axes() -> frozenset:
    """Names of the mesh axes that are manual where this is traced (inside a ``shard_map``
    body, or ``pmap`` where it is built on shard_map); empty outside.

    jax releases without an abstract mesh (0.4.x) only record bound axis names, so there
    a ``vmap(axis_name=...)`` or ``pmap`` name counts as manual too (the safe side).
    """
    try:
        from jax.sharding import get_abstract_mesh
    except ImportError:  # pragma: no cover - jax 0.4.x
        return frozenset(_axis_env_names())
    return frozenset(getattr(get_abstract_mesh(), "manual_axes", ()) or ())


def _axis_env_names() -> tuple:
    """Axis names bound by shard_map/pmap/vmap in the current trace (private JAX API)."""
    from jax._src import core

    get_env = getattr(core, "get_axis_env", None)
    if get_env is not None:
        env = get_env()
        sizes = getattr(env, "axis_sizes", None)
        if sizes is not None:
            return tuple(sizes)
        names = getattr(env, "axis_names", None)
        if callable(names):
            return tuple(names())
    frames = getattr(core, "thread_local_state", None)  # pragma: no cover - very old jax
    if frames is not None:
        return tuple(f.name for f in frames.trace_state.axis_env)
    return ()


def varying_axes(x) -> frozenset | None:
    """The manual mesh axes ``x`` varies over, where JAX tracks it (shard_map with
    ``check_vma=True`` on a jax that records it in the type); ``None`` when unknown."""
    from jax._src import config as jax_config

    check = getattr(jax_config, "_check_vma", None)
    if check is None or not check.value:
        return None
    aval = jax.typeof(x) if hasattr(jax, "typeof") else jax.core.get_aval(x)  # type: ignore[attr-defined]
    mat = getattr(aval, "mat", None)  # jax >= 0.11
    if mat is not None and hasattr(mat, "varying"):
        return frozenset(mat.varying)
    vma = getattr(aval, "vma", None)
    return None if vma is None else frozenset(vma)


def axis_size(name) -> int:
    """Size of the bound mesh axis ``name``, as a Python int."""
    size = getattr(jax.lax, "axis_size", None)
    if size is not None:
        return int(size(name))
    return int(jax.lax.psum(1, name))  # pragma: no cover - jax 0.4.x: a constant


def register_replication_rule(primitive) -> None:
    """jax 0.4.x ``shard_map(check_rep=True)`` needs a replication rule for every primitive:
    the result is replicated over the mesh axes every operand is replicated over. Newer
    jax derives this from the abstract value (a no-op there)."""
    try:
        from jax.experimental import shard_map as legacy
    except ImportError:  # pragma: no cover
        return
    checks = getattr(legacy, "_check_rules", None)
    if checks is None or getattr(jax, "shard_map", None) is not None:
        return

    def rule(mesh, *in_rep, **params):
        reps = [r for r in in_rep if r is not None]
        return set.intersection(*map(set, reps)) if reps else set(mesh.axis_names)

    checks.setdefault(primitive, rule)
    legacy.register_norewrite(primitive)  # type: ignore[attr-defined]
