"""``brainpy.state.PoissonInput`` and ``brainpy.state.poisson_input``, sampled exactly.

The host's versions (BrainPy 2.9's ``brainpy.state``, 2.8's ``brainpy_state``) draw a
normal array *and* a ``jax.random.binomial`` array at every step and keep one of them
per call (the normal one, rounded and clipped at 0, whenever ``num_input * p > 5`` and
``num_input * (1 - p) > 5``). These draw once, exactly, through the package's functional
core :func:`brainpy_poisson_plugin.ops.poisson_add.poisson_add`, with one key per call
from ``brainstate.random`` (so ``brainstate.random.seed(s)`` reproduces a run).

Everything else is the host's, point for point: brainunit quantities (``freq`` in Hz,
``weight`` and the target with units, the result in the target's unit, a unit mismatch
raising brainunit's ``UnitMismatchError`` as the host's addition does), the spike
probability ``p = -expm1(-freq * dt)`` with ``dt`` from ``brainstate.environ``,
``indices`` (only ``target[indices]`` receives input, draws indexed by position in it,
repeated indices accumulating), ``refractory`` (masked elements keep their bits), and
``freq`` / ``weight`` given as a ``State`` (read at every call). Forms the exact sampler
does not serve (:mod:`.state_forms`) run the host's own code.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import brainstate
import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

from ..checks import check_impl
from ..ops.poisson_add import prepare_poisson_add
from ..sampling.tables import check_num_input
from .compat import original_state_poisson_input, original_state_poisson_input_class

__all__ = ["PoissonInput", "delegated_form", "poisson_input", "spike_probability"]

HostPoissonInput: Any = original_state_poisson_input_class()
host_poisson_input: Any = original_state_poisson_input()


def spike_probability(freq: Any) -> Any:
    """The host's per-step spike probability ``-expm1(-freq * dt)``, ``dt`` from ``brainstate.environ``.

    ``freq * dt`` must be dimensionless (``freq`` in Hz with ``dt`` in ms, or two plain
    numbers); brainunit raises ``UnitMismatchError`` otherwise, as in the host.
    """
    rate_dt = freq * brainstate.environ.get_dt()
    if isinstance(rate_dt, u.Quantity):
        rate_dt = rate_dt.to_decimal()
    return -jnp.expm1(-rate_dt)  # what brainunit's expm1 does on a plain number


def _is_concrete(x: Any) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _is_array_leaf(value: Any) -> bool:
    return isinstance(value, (u.Quantity, jax.Array, np.ndarray))


def delegated_form(freq: Any, num_input: Any, weight: Any, target_value: Any) -> str | None:
    """The :data:`~.state_forms.DELEGATED` key of a call the exact sampler does not serve, else ``None``.

    ``freq`` and ``weight`` are the values (a ``State`` already read).
    """
    if not _is_array_leaf(target_value):
        return "pytree-target"
    mantissa = u.get_mantissa(target_value)
    if not jnp.issubdtype(jnp.result_type(mantissa), jnp.floating):
        return "non-float-target"
    if np.shape(u.get_mantissa(freq)) != ():
        return "array-freq"
    weight_mantissa = u.get_mantissa(weight)
    if np.shape(weight_mantissa) != ():
        return "array-weight"
    if jnp.result_type(mantissa, weight_mantissa) != jnp.result_type(mantissa):
        return "promoting-weight"
    if isinstance(num_input, (bool, np.bool_)) or not isinstance(num_input, (numbers.Integral, np.integer)):
        return "non-integer-num-input"
    return None


def _weight_in_unit(weight: Any, target_value: Any, unit: Any, dtype: Any) -> Any:
    """``weight`` as a number in the target's ``unit``; a mismatch raises as the host's ``tar + x * weight``."""
    # brainunit's own check on scalars (UnitMismatchError, as in the host). Not with zeros:
    # brainunit lets a plain zero pass as any unit.
    one = jnp.ones((), dtype)
    probe = u.Quantity(one, unit=unit) if isinstance(target_value, u.Quantity) else one
    _ = probe + one * weight
    return u.Quantity(weight).to_decimal(unit)


def _check_refractory(refractory: Any, shape: tuple[int, ...]) -> None:
    ref_shape = tuple(np.shape(refractory))
    try:
        ok = jnp.broadcast_shapes(ref_shape, shape) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"refractory must broadcast to the target's shape {tuple(shape)}, got refractory of shape {ref_shape}"
        )


def poisson_input(
    freq: Any,
    num_input: int,
    weight: Any,
    target: brainstate.State,
    indices: Any = None,
    refractory: Any = None,
    *,
    impl: str = "auto",
) -> None:
    """Add Poisson input to ``target`` in place: ``target += weight * k``, ``k ~ Binomial(num_input, p)``.

    The host's ``brainpy.state.poisson_input`` with the same arguments and effects, but
    each ``k`` is drawn exactly (table inversion), once, from one key split from
    ``brainstate.random`` per call.

    Args:
        freq: rate of each input, a brainunit quantity in Hz (or a ``State`` holding
            one; read now). ``p = -expm1(-freq * dt)``, ``dt = brainstate.environ.get_dt()``.
        num_input: number of independent inputs per element, an integer >= 1.
        weight: weight per input spike, a scalar with units convertible to the target's
            (or a ``State`` holding one).
        target: the ``brainstate.State`` to add to; its value keeps its unit and dtype.
        indices: optional index into the target's value: only ``target[indices]``
            receives input (repeated indices receive one draw each, accumulated).
        refractory: optional boolean mask broadcastable to the target's shape; where it
            is true the target keeps its value, bit for bit.
        impl: ``"auto"``, ``"fused"`` or ``"reference"`` (see
            :func:`~brainpy_poisson_plugin.ops.poisson_add.poisson_add`), or ``"host"``
            (the host's own code).

    Forms listed in :data:`~brainpy_poisson_plugin.host.state_forms.DELEGATED` (a
    per-element ``freq``, a pytree target, ...) run the host's own code.

    Raises:
        TypeError: ``target`` is not a ``State``; ``num_input`` is a bool.
        ValueError: ``impl`` unknown; ``num_input < 1``; a concrete ``freq`` gives ``p``
            outside ``[0, 1]`` (a negative rate); a concrete non-finite ``weight``;
            ``refractory`` does not broadcast to the target. All before any random draw.
        brainunit.UnitMismatchError: ``freq * dt`` is not dimensionless, or ``weight``'s
            unit does not match the target's (as in the host).
    """
    check_impl(impl)
    if not isinstance(target, brainstate.State):
        raise TypeError(f"target must be a brainstate.State, got target={target!r}")
    if impl == "host":
        return host_poisson_input(freq, num_input, weight, target, indices, refractory)
    freq_value = brainstate.maybe_state(freq)
    weight_value = brainstate.maybe_state(weight)
    tar_val = target.value
    if delegated_form(freq_value, num_input, weight_value, tar_val) is not None:
        return host_poisson_input(freq, num_input, weight, target, indices, refractory)

    # Every check before the key is split: a refused call leaves the RNG and the target as they were.
    n = check_num_input(num_input)
    mantissa, unit = u.split_mantissa_unit(tar_val)
    mantissa = jnp.asarray(mantissa)
    p = spike_probability(freq_value)
    if _is_concrete(p):
        pf = float(p)
        if not 0.0 <= pf <= 1.0:
            raise ValueError(f"freq must give p = -expm1(-freq * dt) in [0, 1], got freq={freq_value!r} (p={pf!r})")
    w = _weight_in_unit(weight_value, tar_val, unit, mantissa.dtype)
    if _is_concrete(w) and not math.isfinite(float(w)):
        raise ValueError(f"weight must be finite, got weight={weight_value!r}")
    sub_shape = None if indices is None else mantissa[indices].shape
    if refractory is not None:
        _check_refractory(refractory, mantissa.shape)

    # Every check of the functional core (the weight finite in the target's dtype too) runs
    # before the key is split: a refused call leaves brainstate.random where it was.
    receiver = mantissa if sub_shape is None else jnp.zeros(sub_shape, mantissa.dtype)
    prepared = prepare_poisson_add(receiver, n, p, w, impl=impl)
    drawn = prepared.apply(brainstate.random.split_key())
    new = drawn if sub_shape is None else mantissa.at[indices].add(drawn)
    if refractory is not None:
        new = jnp.where(jnp.asarray(refractory), mantissa, new)
    target.value = u.Quantity(new, unit=unit) if isinstance(tar_val, u.Quantity) else new
    return None


class PoissonInput(HostPoissonInput):
    """``brainpy.state.PoissonInput`` with exact counts: the host's class, updated by :func:`poisson_input`.

    A subclass of the host's own class (so ``isinstance`` checks and brainstate module
    registration hold), with the host's signature plus keyword-only ``impl=``.

    Args:
        target: a ``brainstate.nn.Prefetch`` of the state to drive (e.g.
            ``neuron.prefetch('V')``), as in the host.
        indices: ``None`` or an index into the target's value.
        num_input: number of independent inputs per element, an integer >= 1.
        freq: rate of each input (Hz quantity, or a ``State``, read at every update).
        weight: weight per input spike (with the target's units, or a ``State``).
        name: module name.
        impl: ``"auto"``, ``"fused"``, ``"reference"`` or ``"host"``.

    Raises:
        TypeError / ValueError: ``num_input`` not an integer >= 1 (a float or traced
            ``num_input`` is passed on and runs the host's code), ``impl`` unknown.
    """

    def __init__(
        self,
        target: Any,
        indices: Any,
        num_input: int,
        freq: Any,
        weight: Any,
        name: str | None = None,
        *,
        impl: str = "auto",
    ):
        check_impl(impl)
        if isinstance(num_input, (bool, np.bool_, numbers.Integral, np.integer)):
            check_num_input(num_input)
        super().__init__(target, indices, num_input, freq, weight, name=name)
        self.impl = impl

    def update(self) -> None:
        """Add one step of Poisson input to the prefetched target state."""
        target_state = getattr(self.target.module, self.target.item)
        poisson_input(self.freq, self.num_input, self.weight, target_state, self.indices, impl=self.impl)
