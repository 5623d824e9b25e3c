"""This plugin's swap: BrainPy's ``PoissonInput`` names rebound to the plugin's, reversibly.

Public API: :func:`activate`, :func:`deactivate`, :func:`swapped`, :func:`is_active` and
:func:`status` (the last from :mod:`.swap_status`, which also holds
:func:`record_reason`). The generic machinery lives in :mod:`.ledger`; its functions are
re-exported here for callers of the old single module.

Names rebound (where the installed BrainPy has them):

- the classic class (:mod:`brainpy_poisson_plugin.host.poisson_input`):
  ``brainpy.dyn.PoissonInput``, ``brainpy.dyn.projections.PoissonInput``, and
  ``brainpy.synapses.PoissonInput`` (BrainPy 2.3-2.4 models spell it so; BrainPy 2.6
  serves it from a deprecation ``__getattr__``, 2.7+ dropped it: the swap binds it in the
  module's ``__dict__`` and :func:`deactivate` deletes it again);
- the brainstate-based API (:mod:`brainpy_poisson_plugin.host.state_inputs`):
  ``brainpy.state.PoissonInput`` and ``brainpy.state.poisson_input`` (BrainPy 2.8 and
  2.9), and on 2.8 also the same names on the ``brainpy_state`` package that serves
  ``brainpy.state`` (when it is imported).

The defining modules (``brainpy.dyn.projections.inputs``, ``brainpy.state.inputs``,
``brainpy_state._brainpy.inputs``, ...) are never modified, so the host's objects stay
reachable there (:mod:`brainpy_poisson_plugin.host.compat`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

from .ledger import (
    ABSENT,
    OverrideError,
    applied_overrides,
    apply_overrides,
    bound,
    owners_of,
    resolved,
    revert_overrides,
)
from .swap_status import SwapStatus, record_reason, status

# OverrideError, apply_overrides, revert_overrides, applied_overrides (from .ledger) and
# SwapStatus, record_reason, status (from .swap_status) are re-exported for callers of
# the single module this used to be.

__all__ = [
    "OWNER",
    "OverrideError",
    "SwapStatus",
    "SwapTarget",
    "activate",
    "applied_overrides",
    "apply_overrides",
    "deactivate",
    "is_active",
    "load_errors",
    "overrides",
    "plugin_class",
    "plugin_object",
    "record_reason",
    "revert_overrides",
    "status",
    "swapped",
    "target_names",
    "targets",
]

#: Owner name used in the ledger for this plugin's own overrides.
OWNER = "brainpy-poisson-plugin"

_CLASSIC = "classic"
_STATE = "state"

#: (api, attribute) -> (plugin module, host-original getter in host.compat).
_SOURCES: dict[tuple[str, str], tuple[str, str]] = {
    (_CLASSIC, "PoissonInput"): ("brainpy_poisson_plugin.host.poisson_input", "original_poisson_input_class"),
    (_STATE, "PoissonInput"): ("brainpy_poisson_plugin.host.state_inputs", "original_state_poisson_input_class"),
    (_STATE, "poisson_input"): ("brainpy_poisson_plugin.host.state_inputs", "original_state_poisson_input"),
}

#: (api, attribute) -> the plugin's object, filled once, on first load.
_objects: dict[tuple[str, str], Any] = {}
#: (api, attribute) -> why the plugin's object could not be loaded.
_load_errors: dict[tuple[str, str], str] = {}


@dataclasses.dataclass(frozen=True)
class SwapTarget:
    """One host name the swap rebinds.

    Attributes:
        name: the dotted host name, e.g. ``"brainpy.state.poisson_input"``.
        api: ``"classic"`` (``bp.dyn``) or ``"state"`` (``brainpy.state``).
        attr: ``"PoissonInput"`` or ``"poisson_input"``.
    """

    name: str
    api: str
    attr: str

    @property
    def key(self) -> tuple[str, str]:
        """``(api, attr)``: which plugin object replaces the host's here."""
        return (self.api, self.attr)


def plugin_object(api: str, attr: str) -> Any:
    """The plugin's replacement for ``(api, attr)``, imported on first use and kept.

    Raises ``ImportError`` (or what the import raised) when it cannot be loaded.
    """
    key = (api, attr)
    obj = _objects.get(key)
    if obj is None:
        module_name, _ = _SOURCES[key]
        obj = getattr(importlib.import_module(module_name), attr)
        _objects[key] = obj
    return obj


def plugin_class() -> type:
    """The plugin's classic ``PoissonInput`` (imports BrainPy and JAX)."""
    cls: type = plugin_object(_CLASSIC, "PoissonInput")
    return cls


def host_object(api: str, attr: str) -> Any:
    """The host's own object for ``(api, attr)``, read from its defining module."""
    from brainpy_poisson_plugin.host import compat

    getter: Callable[[], Any] = getattr(compat, _SOURCES[(api, attr)][1])
    return getter()


def _module_binds(modname: str, attr: str) -> bool:
    module = sys.modules.get(modname)
    return module is not None and attr in vars(module)


def _state_modules() -> list[str]:
    """The public brainpy.state modules of this host that are imported now."""
    if "brainpy" not in sys.modules:
        return []
    from brainpy_poisson_plugin.host import compat

    if not compat.has_state_api():  # imports brainpy.state where it exists
        return []
    return [m for m in compat.STATE_PUBLIC_MODULES if m in sys.modules]


def targets() -> list[SwapTarget]:
    """The host names the swap rebinds on the installed (and imported) BrainPy."""
    found = [SwapTarget("brainpy.dyn.PoissonInput", _CLASSIC, "PoissonInput")]
    with contextlib.suppress(Exception):  # an old or broken host: just fewer names
        importlib.import_module("brainpy.dyn.projections")
    if _module_binds("brainpy.dyn.projections", "PoissonInput"):
        found.append(SwapTarget("brainpy.dyn.projections.PoissonInput", _CLASSIC, "PoissonInput"))
    found.append(SwapTarget("brainpy.synapses.PoissonInput", _CLASSIC, "PoissonInput"))
    for modname in _state_modules():
        for attr in ("PoissonInput", "poisson_input"):
            if _module_binds(modname, attr):
                found.append(SwapTarget(f"{modname}.{attr}", _STATE, attr))
    return found


def target_names() -> list[str]:
    """The dotted host names the swap rebinds on the installed BrainPy."""
    return [t.name for t in targets()]


def load_errors() -> dict[str, str]:
    """``{"api.attr": error}`` for plugin objects that failed to load (their names stay the host's)."""
    return {f"{api}.{attr}": err for (api, attr), err in _load_errors.items()}


def overrides() -> dict[str, Any]:
    """This plugin's component overrides: every target name -> the plugin's object.

    A brainpy.state object that fails to load is left out (its names keep the host's
    objects; :func:`load_errors` and :func:`status` say why); the classic class failing
    to load raises, as before.
    """
    out: dict[str, Any] = {}
    for target in targets():
        try:
            out[target.name] = plugin_object(*target.key)
        except Exception as exc:
            if target.api == _CLASSIC:
                raise
            _load_errors[target.key] = f"{type(exc).__name__}: {exc}"
    return out


def activate(*, force: bool = False, owner: str = OWNER) -> bool:
    """Make ``bp.dyn.PoissonInput``, ``brainpy.state.PoissonInput`` etc. the plugin's objects.

    Honours the version gate and ``BRAINPY_POISSON_PLUGIN`` unless ``force=True``.
    Returns whether the swap is active afterwards; :func:`status` says why not.
    """
    from . import version_gate

    if not force:
        decision = version_gate.decide()
        if not decision.allowed:
            record_reason(decision.reason, decision)
            return False
        reason = f"active: {decision.reason}"
    else:
        decision = None
        reason = "active: activate(force=True)"
    problems = apply_overrides(overrides(), owner)
    if problems:
        record_reason("; ".join(f"{k}: {v}" for k, v in problems.items()), decision)
    else:
        record_reason(reason, decision)
    return is_active()


def deactivate() -> list[str]:
    """Undo the swap: restore exactly the objects BrainPy had (delete names it lacked).

    Returns the dotted names restored.
    """
    restored: list[str] = []
    for owner in sorted(owners_of(_objects.values())):
        restored += revert_overrides(owner)
    record_reason("deactivated by deactivate()")
    return restored


@contextlib.contextmanager
def swapped(*, force: bool = False) -> Iterator[bool]:
    """Context manager: the swap is active inside the block, and the previous state after.

    Yields whether the swap is active inside the block. If it was already active on
    entry, it stays active on exit.
    """
    was_active = is_active()
    active = activate(force=force)
    try:
        yield active
    finally:
        if not was_active:
            deactivate()


def is_active() -> bool:
    """Whether every target name currently binds the plugin's object (never imports the plugin)."""
    if "brainpy" not in sys.modules or not _objects:
        return False
    try:
        return all(_objects.get(t.key, ABSENT) is bound(t.name) for t in targets())
    except OverrideError:
        return False


def target_report() -> dict[str, str]:
    """Dotted name -> ``"plugin"``, ``"host"``, ``"absent"`` or ``"other"``: what attribute access answers.

    Includes names a host module ``__getattr__`` serves (on BrainPy 2.6
    ``brainpy.synapses.PoissonInput`` is the host's deprecated alias: ``"host"``).
    """
    report: dict[str, str] = {}
    if "brainpy" not in sys.modules:
        return report
    for target in targets():
        try:
            obj = resolved(target.name)
        except OverrideError:
            obj = ABSENT
        try:
            original = host_object(*target.key)
        except Exception:
            original = ABSENT
        if obj is ABSENT:
            report[target.name] = "absent"
        elif obj is _objects.get(target.key, ABSENT):
            report[target.name] = "plugin"
        elif obj is original:
            report[target.name] = "host"
        else:
            report[target.name] = "other"
    return report
