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

    It is read from the module that defines it (``brainpy.dyn.projections.inputs`` on
    BrainPy 2.7+, ``brainpy._src.dyn.projections.inputs`` on 2.4.3 - 2.6), which the
    swap never modifies, so this is the host's class even while
    ``bp.dyn.PoissonInput`` points at the plugin's.
    """
    import importlib

    for module in (
        "brainpy.dyn.projections.inputs",  # BrainPy 2.7 - 2.8
        "brainpy._src.dyn.projections.inputs",  # BrainPy 2.4.3 - 2.6
    ):
        try:
            return importlib.import_module(module).PoissonInput
        except (ImportError, AttributeError):
            continue
    raise ImportError("this BrainPy release defines no PoissonInput class the plugin can extend")
