"""Which calls of ``brainpy.state.PoissonInput`` / ``poisson_input`` the plugin serves exactly.

Plain data (no BrainPy, JAX or brainstate import), so ``brainpy-poisson doctor`` and the
docs can list it anywhere. :mod:`brainpy_poisson_plugin.host.state_inputs` decides per
call with the same keys: a call in a delegated form runs the host's own code.
"""

from __future__ import annotations

__all__ = ["DELEGATED", "SERVED", "served_forms"]

#: Forms the plugin serves with the exact fused sampler (one key per call).
SERVED: dict[str, str] = {
    "scalar-freq": "freq a scalar (brainunit Hz, or a number when dt is a plain number), concrete or traced",
    "state-freq-weight": "freq / weight given as a brainstate State (read at every call; a changing rate: traced p)",
    "scalar-weight": "weight a scalar, with units convertible to the target's (or none for a unitless target)",
    "array-target": "target a State holding one floating array or brainunit Quantity, any shape (batch axes too)",
    "indices": "indices: any index of the target's value; draws are indexed by position in target[indices]",
    "refractory": "refractory: a boolean mask; masked elements are left bit-for-bit unchanged",
}

#: Forms that run the host's own code (reason per form), as the host would run them.
DELEGATED: dict[str, str] = {
    "array-freq": "freq with a shape (a per-element rate): one table per element is not served",
    "array-weight": "weight with a shape (a per-element weight)",
    "pytree-target": "target whose value is a pytree of arrays (not one array or Quantity)",
    "non-float-target": "target with an integer or boolean dtype",
    "promoting-weight": "weight whose dtype would promote the target's dtype (e.g. float64 weight, float32 target)",
    "non-integer-num-input": "num_input not a Python/numpy integer (a float or a traced value)",
    "impl-host": 'impl="host" (explicitly asked for the host\'s code)',
}


def served_forms() -> dict[str, dict[str, str]]:
    """``{"served": {form: description}, "delegated": {form: reason}}`` (copies)."""
    return {"served": dict(SERVED), "delegated": dict(DELEGATED)}
