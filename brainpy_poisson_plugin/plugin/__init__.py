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

Importing this sub-package is cheap: it imports nothing (the ``.pth`` hook imports it at
interpreter start-up). The public names below are loaded on first access.
"""

from __future__ import annotations

__all__ = [
    "BrainPyPluginWarning",
    "activate",
    "deactivate",
    "swapped",
    "is_active",
    "status",
    "hookimpl",
    "hookspec",
    "get_manager",
]


class BrainPyPluginWarning(UserWarning):
    """A ``brainpy.plugins`` plugin failed to load, failed validation or raised in a hook.

    The plugin is skipped; ``import brainpy`` itself keeps working.
    """


class HostVersionWarning(BrainPyPluginWarning):
    """The installed BrainPy is outside the range this plugin is tested on; no swap."""


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


def __getattr__(name):
    sub = _LAZY.get(name)
    if sub is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{sub}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(__all__) | {"HostVersionWarning"})
