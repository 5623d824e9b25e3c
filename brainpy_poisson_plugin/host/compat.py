"""What differs between the supported BrainPy releases, found out once.

Nothing here imports BrainPy at module import time; each function imports it when
called (the plugin loader must stay cheap when BrainPy is never imported).
"""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=None)
def host_version() -> str:
    """Return the installed BrainPy version string (e.g. ``"2.8.2"``)."""
    from importlib.metadata import version

    return version("brainpy")


@functools.lru_cache(maxsize=None)
def original_poisson_input_class() -> type:
    """Return BrainPy's own ``PoissonInput`` class, as defined by the host.

    It is read from the module that defines it (``brainpy.dyn.projections.inputs``
    from BrainPy 2.4.3 on), which the swap never modifies, so this is the host's
    class even while ``bp.dyn.PoissonInput`` points at the plugin's.
    """
    try:
        from brainpy.dyn.projections.inputs import PoissonInput
    except ImportError:  # pragma: no cover - BrainPy < 2.4.3 spelled it bp.synapses
        from brainpy.synapses import PoissonInput  # type: ignore[no-redef]
    return PoissonInput
