"""Why the swap is in its current state: the recorded reason and the :func:`status` report.

Whoever decides about the swap records why with :func:`record_reason` (the plugin's
hook, :func:`~brainpy_poisson_plugin.plugin.swap.activate` /
:func:`~brainpy_poisson_plugin.plugin.swap.deactivate`); :func:`status` (used by
``brainpy-poisson doctor``) combines that with what the host's modules bind now.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
from typing import Any

from .. import switches

__all__ = ["SwapStatus", "last_reason", "record_reason", "status"]

_lock = threading.Lock()
_last_reason: str | None = None
_last_decision: Any = None


def record_reason(reason: str, decision: Any = None) -> None:
    """Record why the swap is (not) active, for :func:`status` and ``doctor``.

    Args:
        reason: one sentence; ``"active: ..."`` when the swap was applied.
        decision: the :class:`~brainpy_poisson_plugin.plugin.version_gate.GateDecision`
            behind it, if any (kept until a later call passes another one).
    """
    global _last_reason, _last_decision
    with _lock:
        _last_reason = reason
        if decision is not None:
            _last_decision = decision


def last_reason() -> str | None:
    """The reason recorded last, or ``None`` when nothing decided about the swap yet."""
    return _last_reason


@dataclasses.dataclass(frozen=True)
class SwapStatus:
    """Snapshot of the swap for ``status()`` and ``brainpy-poisson doctor``.

    Attributes:
        active: every target name resolves to the plugin's object.
        reason: why the swap is (not) active, in one sentence.
        deliberate: the swap is off because the user asked for it.
        host_version: the BrainPy version checked by the gate.
        supported: the supported BrainPy range.
        switch: the normalised ``BRAINPY_POISSON_PLUGIN`` value.
        targets: dotted name -> ``"plugin"``, ``"host"``, ``"absent"`` or ``"other"``: what
            attribute access answers there, including a host module ``__getattr__`` (on
            BrainPy 2.6 ``brainpy.synapses.PoissonInput`` is the host's deprecated alias).
        state_forms: for a host with ``brainpy.state``: ``{"served": {...}, "delegated":
            {...}}``, the call forms the plugin serves exactly and those that run the host's
            code (:mod:`brainpy_poisson_plugin.host.state_forms`); empty otherwise.
        load_errors: ``{"api.attr": error}`` for plugin objects that failed to load.
    """

    active: bool
    reason: str
    deliberate: bool
    host_version: str | None
    supported: str
    switch: str
    targets: dict[str, str]
    state_forms: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    load_errors: dict[str, str] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of this status (for ``doctor --json``)."""
        return dataclasses.asdict(self)


def status() -> SwapStatus:
    """Explain whether the swap is active, and why (or why not)."""
    from . import swap, version_gate

    active = swap.is_active()
    targets = swap.target_report()
    deliberate = False
    decision = _last_decision if _last_decision is not None else version_gate.decide(warn=False)
    errors = swap.load_errors()
    if active:
        reason = _last_reason or "active"
    elif switches.get(switches.DISABLE_AUTOLOAD) and _last_reason is None:
        reason = "plugin autoload disabled by BRAINPY_DISABLE_PLUGIN_AUTOLOAD=1"
        deliberate = True
    elif "brainpy" not in sys.modules:
        reason = "brainpy has not been imported in this process"
    elif _last_reason is not None:
        reason = _last_reason
        deliberate = bool(getattr(decision, "deliberate", False)) or reason.startswith("deactivated")
        if reason.startswith("active:") and not errors and not active:
            # allowed, yet some name is not the plugin's class now
            elsewhere = ", ".join(f"{n} is {w}" for n, w in targets.items() if w != "plugin")
            reason = f"not active although allowed ({reason[len('active: ') :]}): {elsewhere}"
        if errors and reason.startswith("active"):
            reason = "partly active: " + "; ".join(f"{k} failed to load ({v})" for k, v in errors.items())
    else:
        reason = "the plugin loader has not run (is the autoload .pth hook installed?)"
    forms: dict[str, dict[str, str]] = {}
    if any(name.startswith(("brainpy.state.", "brainpy_state.")) for name in targets):
        from brainpy_poisson_plugin.host.state_forms import served_forms

        forms = served_forms()
    return SwapStatus(
        active=active,
        reason=reason,
        deliberate=deliberate,
        host_version=getattr(decision, "host_version", None),
        supported=version_gate.SUPPORTED_BRAINPY_TEXT,
        switch=version_gate.switch(),
        targets=targets,
        state_forms=forms,
        load_errors=errors,
    )
