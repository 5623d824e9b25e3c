"""The drop-in ``PoissonInput``: BrainPy's class, driven by the exact fused sampler.

It subclasses the host's own ``PoissonInput`` (so it is a ``Projection`` where the host's
is one, keeping ``DynSysGroup``'s projections-before-dynamics order, and passes every
``isinstance`` check made against the host class) and keeps the host's constructor
signature, adding keyword-only ``impl=`` and ``seed=``.
"""

from __future__ import annotations

from typing import Any

import brainpy.math as bm
import jax
import jax.numpy as jnp
import numpy as np
from brainpy import share

from .. import config
from ..checks import (
    check_impl,
    check_num_input,
    check_probability,
    check_real_scalar,
    check_seed,
    check_target_dtype,
    check_weight,
    is_traced,
)
from ..ops.blocks import shard_map_block
from ..ops.poisson_add import PreparedPoissonAdd, prepare_poisson_add
from .compat import original_poisson_input_class

__all__ = ["PoissonInput"]

HostPoissonInput: Any = original_poisson_input_class()

#: The threefry implementation's name for ``jax.random.key(..., impl=...)``: a ``seed=``
#: stream does not depend on ``jax_default_prng_impl``.
_SEED_PRNG_IMPL = "threefry2x32"


def _rate_probability(freq: float, dt: Any) -> Any:
    """``p = freq * dt / 1000``; checked (naming ``freq`` and ``dt``) when ``dt`` is concrete.

    A traced ``dt`` gives a traced ``p``, whose table is built at run time.
    """
    if is_traced(dt):
        return freq * dt / 1e3
    dt_value = check_real_scalar(dt, name="dt", minimum=0.0)
    p = freq * dt_value / 1e3
    if p > 1.0:
        raise ValueError(
            f"freq * dt / 1000 must be <= 1 (a spike probability per step), got "
            f"freq={freq!r} Hz and dt={dt_value!r} ms, i.e. p={p!r}"
        )
    return check_probability(p, name="freq * dt / 1000")


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
        freq: rate of each input in Hz, a finite real number >= 0: a Python or numpy
            number or a concrete 0-d array, stored as the Python float it is (a traced
            value is refused).
        weight: synaptic weight, a finite real number (same forms as ``freq``), finite
            in ``target_var``'s dtype.
        mode: BrainPy computing mode.
        name: node name.
        impl: ``"auto"`` (the process default, see
            :func:`brainpy_poisson_plugin.set_default_impl`; else the fused kernel where
            available and the reference otherwise), ``"fused"``, ``"reference"``, or
            ``"host"`` (BrainPy's own update, for comparisons).
        seed: optional integer seed in [-2**63, 2**63 - 1] for an instance-owned
            threefry stream (independent of ``jax_default_prng_impl``). Refused with
            ``impl="host"``, whose update draws from BrainPy's global RNG.
        shard_map_spec: for a node updated inside a ``shard_map`` body, where
            ``target_var`` holds this device's block: the block's
            ``jax.sharding.PartitionSpec`` in the shard_map (see
            :func:`brainpy_poisson_plugin.shard_map_block`). ``None`` otherwise.

    Raises:
        TypeError: ``target_var`` is not a Variable, or has a dtype other than float16,
            bfloat16, float32 or float64, or an argument has the wrong type (bool,
            complex, string, traced; the message names it).
        ValueError: ``num_input`` out of [1, 2**31 - 1], ``freq`` negative or
            non-finite, ``weight`` non-finite (in float64 or in the target's dtype),
            ``seed`` out of range or combined with ``impl="host"``, or
            ``freq * dt / 1000 > 1`` (names ``freq`` and ``dt``; checked again at every
            step with the current ``dt``, before the random state advances).
    """

    def __init__(
        self,
        target_var: bm.Variable,
        num_input: int,
        freq: int | float,
        weight: int | float,
        mode: bm.Mode | None = None,
        name: str | None = None,
        *,
        impl: str = "auto",
        seed: int | None = None,
        shard_map_spec: jax.sharding.PartitionSpec | None = None,
    ):
        # Every check runs before the node is registered: nothing half-applied.
        if not isinstance(target_var, bm.Variable):
            raise TypeError(
                f'"target_var" must be an instance of Variable. But we got {type(target_var)}: {target_var}'
            )
        dtype = check_target_dtype(target_var.dtype, name="target_var")
        n = check_num_input(num_input)
        f = check_real_scalar(freq, name="freq", minimum=0.0)
        w = check_weight(weight, dtype, name="weight", traced_ok=False)
        check_impl(impl)
        s = check_seed(seed)
        if s is not None and impl == "host":
            raise ValueError(
                f"seed={s} cannot be used with impl='host': BrainPy's own update draws from the "
                "global RNG (bm.random.seed); drop seed= or pick another impl"
            )
        _rate_probability(f, bm.get_dt())
        if shard_map_spec is not None:
            if not isinstance(shard_map_spec, jax.sharding.PartitionSpec):
                raise TypeError(
                    f"shard_map_spec must be a PartitionSpec or None, got shard_map_spec={shard_map_spec!r}"
                )
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
        # Stored as the Python numbers they are (a 0-d array freq included), so the host's
        # update (impl="host") and the run-time checks see plain floats.
        self.freq = f
        self.weight = w
        self.impl = impl
        self.seed = s
        self.shard_map_spec = shard_map_spec
        if self.seed is not None:
            key = jax.random.key(self.seed, impl=_SEED_PRNG_IMPL)
            self._base_key = np.asarray(jax.random.key_data(key))
            self.rng_step = bm.Variable(jnp.zeros((), jnp.uint32))

    def reset_state(self, *args, **kwargs):
        """Rewind the instance's own random stream (``seed=`` only); nothing else to reset."""
        if self.seed is not None:
            self.rng_step.value = jnp.zeros((), jnp.uint32)

    def resolved_impl(self) -> str:
        """The implementation the next step uses (``impl``, or the process default for "auto")."""
        return config.default_impl() if self.impl == "auto" else self.impl

    def _next_key(self) -> jax.Array:
        """This step's key; advances the global RNG or the instance's step counter."""
        if self.seed is None:
            return bm.random.split_key()
        base = jax.random.wrap_key_data(jnp.asarray(self._base_key, jnp.uint32), impl=_SEED_PRNG_IMPL)
        key = jax.random.fold_in(base, self.rng_step.value)
        self.rng_step.value = self.rng_step.value + jnp.uint32(1)
        return key

    def _prepare(self, impl: str) -> PreparedPoissonAdd:
        """Check everything this step needs (current ``dt``, ``freq``, target) without side effects."""
        if is_traced(self.freq):
            # A rate set during the run (``node.freq = rate(t)`` inside a jitted loop): p is
            # traced, its table is built in the compiled program, and a run-time p outside
            # [0, 1] shows as NaN (documented) rather than a silently clipped rate.
            p = self.freq * share["dt"] / 1e3
        else:
            freq = check_real_scalar(self.freq, name="freq", minimum=0.0)
            p = _rate_probability(freq, share["dt"])
        target = self.target_var.value
        # Inside a user's shard_map: this device's block (an unplaced call is refused here,
        # before the key advances).
        block = None if self.shard_map_spec is None else shard_map_block(self.shard_map_spec, target.shape)
        return prepare_poisson_add(target, self.num_input, p, self.weight, impl=impl, block=block)

    def update(self):
        """Add one step of Poisson input to ``target_var``.

        Every check (``freq * dt / 1000 <= 1`` for the current ``dt``, the target's dtype)
        runs before the random state advances: a failing step changes nothing.
        """
        impl = self.resolved_impl()
        if impl == "host":
            if self.seed is not None:
                raise ValueError(
                    f"seed={self.seed} cannot be honoured: impl='auto' resolves to 'host' in this "
                    "process (set_default_impl / BRAINPY_POISSON_IMPL / pytest --brainpy-poisson), and "
                    "BrainPy's own update draws from the global RNG"
                )
            return HostPoissonInput.update(self)
        # With a traced dt p is traced too: poisson_add then builds the table at run time,
        # and an out-of-range p shows as NaN rather than a silently clipped rate.
        prepared = self._prepare(impl)
        key = self._next_key()
        self.target_var.value = prepared.apply(key)

    def __repr__(self) -> str:
        return (
            f"{self.name}(num_input={self.num_input}, freq={self.freq}, weight={self.weight}, "
            f"impl={self.impl!r}, seed={self.seed})"
        )
