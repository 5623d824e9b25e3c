"""The plugin's warning classes and the one way it emits warnings.

Everything the loader, the version gate and the switches report goes through
:func:`emit_warning`, which never raises: the loader runs inside ``import brainpy`` and a
plugin problem must not turn into an import error, also under ``-W error``. The classes are
re-exported by :mod:`brainpy_poisson_plugin.plugin`.

Imports only ``sys`` (``warnings`` on first use): safe at interpreter start.
"""

from __future__ import annotations

import sys

__all__ = [
    "BrainPyPluginWarning",
    "HostVersionWarning",
    "SwitchValueWarning",
    "emit_warning",
    "warn_once",
]


class BrainPyPluginWarning(UserWarning):
    """A ``brainpy.plugins`` plugin failed to load, failed validation or raised in a hook.

    The plugin is skipped; ``import brainpy`` itself keeps working.
    """


class HostVersionWarning(BrainPyPluginWarning):
    """The installed BrainPy is outside the range this plugin is tested on; no swap."""


class SwitchValueWarning(BrainPyPluginWarning):
    """An environment switch holds a value it does not allow; its default is used."""


_warned: set[str] = set()


def emit_warning(message: str, category: type[Warning], stacklevel: int = 3) -> None:
    """``warnings.warn`` that never raises (under ``-W error`` it prints to stderr instead).

    So a warning behaves the same on every call whatever the warning filters say.
    """
    import warnings

    try:
        warnings.warn(message, category, stacklevel=stacklevel)
    except Exception:  # the filters turned the warning into an exception
        try:
            sys.stderr.write(f"{category.__name__}: {message}\n")
        except Exception:  # no stderr: nothing left to report to
            pass


def warn_once(key: str, message: str, category: type[Warning] = BrainPyPluginWarning) -> None:
    """:func:`emit_warning` the first time ``key`` is seen in this process."""
    if key in _warned:
        return
    _warned.add(key)
    emit_warning(message, category, stacklevel=4)


def _reset_for_tests() -> None:
    """Forget which warnings were already emitted (tests only)."""
    _warned.clear()
