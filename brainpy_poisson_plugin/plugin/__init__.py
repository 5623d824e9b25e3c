"""BrainPy's missing plugin system, and this package's plugin for it.

BrainPy has no plugin loader of its own, so this sub-package ships one:

- :mod:`.hookspecs` - the pluggy hook specifications (project name ``"brainpy"``) that any
  package can implement, and the ``brainpy.plugins`` entry-point group it registers in.
- :mod:`.manager` - the loader: reads the entry points, registers and validates each
  plugin in isolation, calls the hooks and applies the component overrides.
- :mod:`.autoload` - the tiny import hook that the installed ``.pth`` file puts in place;
  it runs the loader when ``brainpy`` finishes importing.
- :mod:`.hooks` - this package's own hook implementations (the module named by the
  ``poisson`` entry point).
- :mod:`.ledger` - applying / reverting any plugin's component overrides, exactly.
- :mod:`.swap` - this plugin's swap of the ``PoissonInput`` names (classic and
  ``brainpy.state``); ``activate()``, ``deactivate()``, ``swapped()``, ``is_active()``.
- :mod:`.swap_status` - why the swap is in its state: ``record_reason()``, ``status()``.
- :mod:`.version_gate` - the BrainPy versions the swap is tested on, and the
  ``BRAINPY_POISSON_PLUGIN`` switch.
- :mod:`._warnings` - the warning classes (:class:`BrainPyPluginWarning`,
  :class:`HostVersionWarning`, :class:`SwitchValueWarning`) and the never-raising
  :func:`~._warnings.emit_warning`.

Importing this sub-package is cheap: it imports only :mod:`._warnings` (standard library
only); the public names below are loaded on first access.
"""

from __future__ import annotations

from ._warnings import BrainPyPluginWarning, HostVersionWarning, SwitchValueWarning

__all__ = [
    "BrainPyPluginWarning",
    "HostVersionWarning",
    "SwitchValueWarning",
    "activate",
    "deactivate",
    "swapped",
    "is_active",
    "status",
    "hookimpl",
    "hookspec",
    "get_manager",
]

_LAZY = {
    "activate": "swap",
    "deactivate": "swap",
    "swapped": "swap",
    "is_active": "swap",
    "status": "swap",
    "hookimpl": "hookspecs",
    "hookspec": "hookspecs",
    "get_manager": "manager",
}


def __getattr__(name: str) -> object:
    sub = _LAZY.get(name)
    if sub is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{sub}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
