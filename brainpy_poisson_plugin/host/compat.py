"""What differs between the supported BrainPy releases, found out once.

Nothing here imports BrainPy at module import time; each function imports it when
called (the plugin loader must stay cheap when BrainPy is never imported).
"""

from __future__ import annotations

import functools


@functools.cache
def host_version() -> str:
    """Return the installed BrainPy version string (e.g. ``"2.8.2"``)."""
    from importlib.metadata import version

    return version("brainpy")


@functools.cache
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


#: Where the host defines ``brainpy.state``'s inputs: bundled in BrainPy 2.9, from the
#: separate ``brainpy_state`` package in 2.8 (``brainpy.state`` is then a star-import shim).
STATE_DEFINING_MODULES = (
    "brainpy.state.inputs",  # BrainPy 2.9
    "brainpy_state._brainpy.inputs",  # BrainPy 2.8 + brainpy_state 0.1
)

#: The modules that re-export the brainpy.state names a user can reach.
STATE_PUBLIC_MODULES = ("brainpy.state", "brainpy_state")


@functools.cache
def state_inputs_module():
    """Return the module that defines ``brainpy.state.PoissonInput`` / ``poisson_input``.

    Imports ``brainpy.state`` first (on BrainPy 2.8 ``brainpy_state`` refuses a direct
    import from outside that namespace). The swap never modifies this module, so the
    host's objects stay reachable here. Raises ``ImportError`` when the installed BrainPy
    has no ``brainpy.state`` (BrainPy < 2.8).
    """
    import importlib
    import sys

    try:
        importlib.import_module("brainpy.state")
    except ImportError as exc:
        raise ImportError(f"this BrainPy has no brainpy.state ({exc})") from None
    for name in STATE_DEFINING_MODULES:
        module = sys.modules.get(name)
        if module is None:
            try:
                module = importlib.import_module(name)
            except ImportError:
                continue
        if "PoissonInput" in vars(module) and "poisson_input" in vars(module):
            return module
    raise ImportError("this BrainPy's brainpy.state defines no PoissonInput / poisson_input the plugin can serve")


def has_state_api() -> bool:
    """Whether the installed BrainPy has ``brainpy.state`` with ``PoissonInput`` (2.8+)."""
    try:
        state_inputs_module()
    except ImportError:
        return False
    return True


def original_state_poisson_input_class() -> type:
    """Return the host's own ``brainpy.state.PoissonInput`` (read from its defining module)."""
    return state_inputs_module().PoissonInput


def original_state_poisson_input():
    """Return the host's own ``brainpy.state.poisson_input`` (read from its defining module)."""
    return state_inputs_module().poisson_input
