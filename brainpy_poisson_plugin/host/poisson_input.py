"""The drop-in ``PoissonInput``: BrainPy's class, driven by the exact fused sampler.

It subclasses the host's own ``PoissonInput`` (so it is a ``Projection`` where the host's
is one, keeping ``DynSysGroup``'s projections-before-dynamics order, and passes every
``isinstance`` check made against the host class) and keeps the host's constructor
signature, adding keyword-only ``impl=`` and ``seed=``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Optional, Union

import brainpy.math as bm
import jax
import jax.numpy as jnp
import numpy as np
from brainpy import share

from .. import config
from ..checks import check_impl
from ..ops.blocks import resolve_layout, shard_map_block
from ..ops.poisson_add import poisson_add
from ..sampling.tables import check_num_input
from .compat import original_poisson_input_class

__all__ = ["PoissonInput"]

HostPoissonInput = original_poisson_input_class()


def _real_scalar(name: str, value: Any, *, nonnegative: bool = False) -> float:
    """Return ``value`` as a float if it is a finite real scalar (a Python or numpy
    number, or a 0-d array); else raise naming ``name``."""
    shape = getattr(value, "shape", ())
    if shape != ():
        raise ValueError(f"{name} must be a scalar, got {name} of shape {tuple(shape)}")
    if isinstance(value, (jax.Array, np.ndarray)):
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.number)):
        raise TypeError(f"{name} must be a real scalar, got {name}={value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {name}={v!r}")
    if nonnegative and v < 0:
        raise ValueError(f"{name} must be >= 0, got {name}={v!r}")
    return v


def _check_probability(freq: float, dt: Any) -> None:
    if isinstance(dt, numbers.Real):
        p = freq * float(dt) / 1e3
        if p > 1.0:
            raise ValueError(
                f"freq * dt / 1000 must be <= 1 (a spike probability per step), got "
                f"freq={freq!r} Hz and dt={float(dt)!r} ms, i.e. p={p!r}"
            )


class PoissonInput(HostPoissonInput):
    """Poisson input to a :class:`brainpy.math.Variable`, sampled exactly and fused.

    Every step adds ``weight * k`` to each element of ``target_var``, with independent
    ``k ~ Binomial(num_input, freq * dt / 1000)`` (exact, by table inversion; not a
    normal approximation). The draws come from one key per step: by default a key
    split from BrainPy's global RNG (``bm.random.split_key()``), so ``bm.random.seed(s)``
    reproduces a run; with ``seed=`` from the instance's own key and step counter,
    which :meth:`reset_state` rewinds.

    Args:
        target_var: the :class:`~brainpy.math.Variable` to add to (floating dtype;
            ``(n,)`` or ``(batch, n)`` in batching mode, any shape in fact).
        num_input: number of independent Poisson inputs, an integer >= 1.
        freq: rate of each input in Hz, a finite scalar >= 0.
        weight: synaptic weight, a finite scalar.
        mode: BrainPy computing mode.
        name: node name.
        impl: ``"auto"`` (the process default, see
            :func:`brainpy_poisson_plugin.set_default_impl`; else the fused kernel where
            available and the reference otherwise), ``"fused"``, ``"reference"``, or
            ``"host"`` (BrainPy's own update, for comparisons).
        seed: optional integer seed for an instance-owned random stream.
        shard_map_spec: for a node updated inside a ``shard_map`` body, where
            ``target_var`` holds this device's block: the block's
            ``jax.sharding.PartitionSpec`` in the shard_map (see
            :func:`brainpy_poisson_plugin.shard_map_block`). ``None`` otherwise.

    Raises:
        TypeError: ``target_var`` is not a Variable, or has an integer/bool dtype, or an
            argument has the wrong type (the message names it).
        ValueError: ``num_input < 1``, ``freq`` negative or non-finite, ``weight``
            non-finite, or ``freq * dt / 1000 > 1`` (names ``freq`` and ``dt``).
    """

    def __init__(
        self,
        target_var: bm.Variable,
        num_input: int,
        freq: Union[int, float],
        weight: Union[int, float],
        mode: Optional[bm.Mode] = None,
        name: Optional[str] = None,
        *,
        impl: str = "auto",
        seed: Optional[int] = None,
        shard_map_spec: Optional[jax.sharding.PartitionSpec] = None,
    ):
        # Every check runs before the node is registered: nothing half-applied.
        if not isinstance(target_var, bm.Variable):
            raise TypeError(
                f'"target_var" must be an instance of Variable. But we got {type(target_var)}: {target_var}'
            )
        dtype = jnp.dtype(target_var.dtype)
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(f"target_var must have a floating dtype, got target_var.dtype={dtype}")
        n = check_num_input(num_input)
        f = _real_scalar("freq", freq, nonnegative=True)
        _real_scalar("weight", weight)
        check_impl(impl)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (numbers.Integral, np.integer))):
            raise TypeError(f"seed must be an integer or None, got seed={seed!r}")
        _check_probability(f, bm.get_dt())
        if shard_map_spec is not None:
            if not isinstance(shard_map_spec, jax.sharding.PartitionSpec):
                raise TypeError(f"shard_map_spec must be a PartitionSpec or None, got shard_map_spec={shard_map_spec!r}")
            if len(shard_map_spec) > len(target_var.shape):
                raise ValueError(
                    f"shard_map_spec={shard_map_spec} has more entries than target_var has dims "
                    f"(shape {tuple(target_var.shape)})"
                )

        # Skip the host's __init__ (its checks differ between releases) but run the one
        # above it, which registers the node exactly as the host's does.
        super(HostPoissonInput, self).__init__(name=name, mode=mode)
        self.target_var = target_var
        self.num_input = n
        self.freq = freq
        self.weight = weight
        self.impl = impl
        self.seed = None if seed is None else int(seed)
        self.shard_map_spec = shard_map_spec
        if self.seed is not None:
            self._base_key = np.asarray(jax.random.key_data(jax.random.key(self.seed)))
            self.rng_step = bm.Variable(jnp.zeros((), jnp.uint32))

    def reset_state(self, *args, **kwargs):
        """Rewind the instance's own random stream (``seed=`` only); nothing else to reset."""
        if self.seed is not None:
            self.rng_step.value = jnp.zeros((), jnp.uint32)

    def resolved_impl(self) -> str:
        """The implementation the next step uses (``impl``, or the process default for "auto")."""
        return config.default_impl() if self.impl == "auto" else self.impl

    def _next_key(self) -> jax.Array:
        if self.seed is None:
            return bm.random.split_key()
        key = jax.random.fold_in(jnp.asarray(self._base_key, jnp.uint32), self.rng_step.value)
        self.rng_step.value = self.rng_step.value + jnp.uint32(1)
        return key

    def update(self):
        """Add one step of Poisson input to ``target_var``."""
        impl = self.resolved_impl()
        if impl == "host":
            return HostPoissonInput.update(self)
        dt = share["dt"]
        if isinstance(self.freq, numbers.Real):
            _check_probability(float(self.freq), dt)
        # With a traced dt (or freq) p is traced too: poisson_add then builds the table at
        # run time, and an out-of-range p shows as NaN rather than a silently clipped rate.
        p = self.freq * dt / 1e3
        target = self.target_var.value
        block = None if self.shard_map_spec is None else shard_map_block(self.shard_map_spec, target.shape)
        resolve_layout(target, block)  # refuse an unplaced shard_map call before the key advances
        key = self._next_key()
        self.target_var.value = poisson_add(target, key, self.num_input, p, self.weight, impl=impl, block=block)

    def __repr__(self) -> str:
        return (
            f"{self.name}(num_input={self.num_input}, freq={self.freq}, weight={self.weight}, "
            f"impl={self.impl!r}, seed={self.seed})"
        )
