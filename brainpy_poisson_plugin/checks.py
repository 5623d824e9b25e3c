"""Argument checks shared by every public entry point: one checker per argument family.

Each checker returns the normalised value or raises ``TypeError``/``ValueError`` whose
message names the argument and the bad value. Nothing here imports BrainPy.
"""

from __future__ import annotations

__all__ = ["IMPLEMENTATIONS", "FUNCTIONAL_IMPLS", "check_impl"]

#: Implementations a caller may ask for. ``"host"`` only exists for the BrainPy classes
#: (it delegates to BrainPy's own code); ``poisson_add`` accepts :data:`FUNCTIONAL_IMPLS`.
IMPLEMENTATIONS = ("auto", "fused", "reference", "host")

#: ``impl`` values the functional core accepts.
FUNCTIONAL_IMPLS = ("auto", "fused", "reference")


def check_impl(impl: object, allowed: tuple[str, ...] = IMPLEMENTATIONS, *, name: str = "impl") -> str:
    """Return ``impl`` if it is one of ``allowed``; else raise ``ValueError`` naming ``name``."""
    if not isinstance(impl, str) or impl not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {name}={impl!r}")
    return impl
