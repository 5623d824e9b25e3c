"""Rebinding BrainPy's public names to plugin objects, reversibly.

Two layers:

- A generic ledger (:func:`apply_overrides` / :func:`revert_overrides`) used by the plugin
  manager for any plugin's ``brainpy_component_overrides``: it remembers, per dotted name,
  exactly what was there before (including *nothing*), so reverting restores the host's
  objects identically and deletes names that did not exist.
- This plugin's swap of ``PoissonInput``: :func:`activate`, :func:`deactivate`,
  :func:`swapped`, :func:`is_active`, :func:`status`.

Names rebound by the swap (where present): ``brainpy.dyn.PoissonInput``,
``brainpy.dyn.projections.PoissonInput``, ``brainpy.synapses.PoissonInput`` (BrainPy 2.3-2.4
models spell it so). The last one is never a real attribute of the host module: BrainPy
2.6 serves it from a deprecation ``__getattr__`` on ``brainpy.synapses`` (with a
``DeprecationWarning``), BrainPy 2.7+ dropped it. The swap binds the name in the module's
``__dict__``, which shadows a module ``__getattr__``; :func:`deactivate` deletes it again,
so the host's ``__getattr__`` answers exactly as before (or the name is absent again).
The defining module (``brainpy.dyn.projections.inputs`` on 2.7+,
``brainpy._src.dyn.projections.inputs`` on 2.6) is never modified, so the host's class
stays reachable there (see
:func:`brainpy_poisson_plugin.host.compat.original_poisson_input_class`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import sys
import threading
from collections.abc import Iterator, Mapping
from typing import Any

#: Owner name used in the ledger for this plugin's own overrides.
OWNER = "brainpy-poisson-plugin"

_ABSENT = object()
_lock = threading.RLock()


@dataclasses.dataclass
class _Entry:
    previous: Any  # the object that was bound before, or _ABSENT
    replacement: Any
    owner: str


#: dotted name -> what the ledger did there (insertion order = application order).
_ledger: dict[str, _Entry] = {}

#: Why the PoissonInput swap is in its current state (for status() / doctor).
_last_reason: str | None = None
_last_decision: Any = None


class OverrideError(ValueError):
    """A requested override cannot be applied (bad name, defining module, conflict)."""


# --------------------------------------------------------------------------------------
# Generic ledger
# --------------------------------------------------------------------------------------


def _split(name: str) -> tuple[Any, str]:
    if not isinstance(name, str) or not name.startswith("brainpy.") or name.count(".") < 1:
        raise OverrideError(f"override name must be a dotted name under 'brainpy.', got {name!r}")
    modname, _, attr = name.rpartition(".")
    if not attr.isidentifier():
        raise OverrideError(f"override name {name!r} does not end in an identifier")
    try:
        module = importlib.import_module(modname)
    except Exception as exc:  # noqa: BLE001 - any import failure means "not applicable"
        raise OverrideError(f"cannot override {name!r}: module {modname!r} is not importable ({exc})") from None
    return module, attr


def _current(name: str) -> Any:
    """What the module itself binds at ``name`` (its ``__dict__``), or ``_ABSENT``."""
    module, attr = _split(name)
    return module.__dict__.get(attr, _ABSENT) if hasattr(module, "__dict__") else getattr(module, attr, _ABSENT)


def _resolved(name: str) -> Any:
    """What ``module.attr`` answers: the ``__dict__`` entry, else the module's ``__getattr__``.

    A module ``__getattr__`` (PEP 562) is how BrainPy 2.6 serves deprecated aliases such
    as ``brainpy.synapses.PoissonInput``; its deprecation warning is suppressed here.
    Returns ``_ABSENT`` when neither answers.
    """
    import warnings

    module, attr = _split(name)
    obj = module.__dict__.get(attr, _ABSENT)
    if obj is not _ABSENT:
        return obj
    hook = module.__dict__.get("__getattr__")
    if not callable(hook):
        return _ABSENT
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return hook(attr)
        except AttributeError:
            return _ABSENT
        except Exception:  # noqa: BLE001 - a broken host hook: report it as "other", never raise
            return None


def apply_overrides(overrides: Mapping[str, Any], owner: str) -> dict[str, str]:
    """Rebind each dotted name in ``overrides`` to its object, remembering what was there.

    Returns ``{name: problem}`` for the names that were not applied (an empty dict when
    everything was applied). Never raises for a bad entry: the caller reports the
    problems. Re-applying the same object is a no-op; a name already overridden by a
    different owner is left alone (first owner wins) and reported.
    """
    problems: dict[str, str] = {}
    with _lock:
        for name, obj in overrides.items():
            try:
                module, attr = _split(name)
            except OverrideError as exc:
                problems[str(name)] = str(exc)
                continue
            current = module.__dict__.get(attr, _ABSENT)
            entry = _ledger.get(name)
            if entry is not None:
                if entry.replacement is obj:
                    if current is not obj:  # someone rebound it meanwhile: take it back
                        setattr(module, attr, obj)
                    continue
                if entry.owner != owner:
                    problems[name] = f"already overridden by plugin {entry.owner!r}"
                    continue
                # Same owner, new object: keep the original 'previous'.
                setattr(module, attr, obj)
                entry.replacement = obj
                continue
            if current is not _ABSENT and getattr(current, "__module__", None) == module.__name__:
                problems[name] = (
                    f"refusing to rebind {name!r}: {module.__name__!r} defines it "
                    "(only re-exported names may be overridden)"
                )
                continue
            _ledger[name] = _Entry(previous=current, replacement=obj, owner=owner)
            setattr(module, attr, obj)
    return problems


def revert_overrides(owner: str | None = None) -> list[str]:
    """Restore what was bound before the overrides of ``owner`` (all owners if ``None``).

    Names that were not in the module's ``__dict__`` before are deleted again (a name the
    host serves from a module ``__getattr__``, like BrainPy 2.6's deprecated
    ``brainpy.synapses.PoissonInput``, is then answered by that hook again). A name that
    was rebound by someone else after the override is left as it is (and forgotten).
    Returns the names restored.
    """
    restored: list[str] = []
    with _lock:
        for name in reversed(list(_ledger)):
            entry = _ledger[name]
            if owner is not None and entry.owner != owner:
                continue
            del _ledger[name]
            modname, _, attr = name.rpartition(".")
            module = sys.modules.get(modname)
            if module is None:
                continue
            if module.__dict__.get(attr, _ABSENT) is not entry.replacement:
                continue
            if entry.previous is _ABSENT:
                with contextlib.suppress(AttributeError):
                    delattr(module, attr)
            else:
                setattr(module, attr, entry.previous)
            restored.append(name)
    return restored


def applied_overrides() -> dict[str, tuple[str, Any]]:
    """``{dotted name: (owner, replacement)}`` for every override currently recorded."""
    with _lock:
        return {name: (e.owner, e.replacement) for name, e in _ledger.items()}


# --------------------------------------------------------------------------------------
# The PoissonInput swap
# --------------------------------------------------------------------------------------


def plugin_class() -> type:
    """The plugin's ``PoissonInput`` (imports BrainPy and JAX)."""
    from brainpy_poisson_plugin.host.poisson_input import PoissonInput

    return PoissonInput


def target_names() -> list[str]:
    """The host names the swap rebinds on the installed BrainPy."""
    names = ["brainpy.dyn.PoissonInput"]
    try:
        projections = importlib.import_module("brainpy.dyn.projections")
    except Exception:  # noqa: BLE001
        projections = None
    if projections is not None and "PoissonInput" in projections.__dict__:
        names.append("brainpy.dyn.projections.PoissonInput")
    names.append("brainpy.synapses.PoissonInput")
    return names


def overrides() -> dict[str, Any]:
    """This plugin's component overrides: every target name -> the plugin's class."""
    cls = plugin_class()
    return {name: cls for name in target_names()}


def _note(reason: str, decision: Any = None) -> None:
    global _last_reason, _last_decision
    _last_reason = reason
    if decision is not None:
        _last_decision = decision


def activate(*, force: bool = False, owner: str = OWNER) -> bool:
    """Make ``bp.dyn.PoissonInput`` (and the other target names) the plugin's class.

    Honours the version gate and ``BRAINPY_POISSON_PLUGIN`` unless ``force=True``.
    Returns whether the swap is active afterwards; :func:`status` says why not.
    """
    from . import version_gate

    if not force:
        decision = version_gate.decide()
        if not decision.allowed:
            _note(decision.reason, decision)
            return False
        reason = f"active: {decision.reason}"
    else:
        decision = None
        reason = "active: activate(force=True)"
    problems = apply_overrides(overrides(), owner)
    if problems:
        _note("; ".join(f"{k}: {v}" for k, v in problems.items()), decision)
    else:
        _note(reason, decision)
    return is_active()


def deactivate() -> list[str]:
    """Undo the swap: restore exactly the objects BrainPy had (delete names it lacked).

    Returns the dotted names restored.
    """
    cls = sys.modules.get("brainpy_poisson_plugin.host.poisson_input")
    cls = getattr(cls, "PoissonInput", None)
    restored: list[str] = []
    with _lock:
        owners = {e.owner for e in _ledger.values() if cls is not None and e.replacement is cls}
    for owner in sorted(owners):
        restored += revert_overrides(owner)
    _note("deactivated by deactivate()")
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
    """Whether every target name currently resolves to the plugin's class."""
    if "brainpy" not in sys.modules:
        return False
    mod = sys.modules.get("brainpy_poisson_plugin.host.poisson_input")
    cls = getattr(mod, "PoissonInput", None)
    if cls is None:
        return False
    try:
        return all(_current(name) is cls for name in target_names())
    except OverrideError:
        return False


@dataclasses.dataclass(frozen=True)
class SwapStatus:
    """Snapshot of the swap for ``status()`` and ``brainpy-poisson doctor``.

    Attributes:
        active: every target name resolves to the plugin's class.
        reason: why the swap is (not) active, in one sentence.
        deliberate: the swap is off because the user asked for it.
        host_version: the BrainPy version checked by the gate.
        supported: the supported BrainPy range.
        switch: the normalised ``BRAINPY_POISSON_PLUGIN`` value.
        targets: dotted name -> ``"plugin"``, ``"host"``, ``"absent"`` or ``"other"``: what
            attribute access answers there, including a host module ``__getattr__`` (on
            BrainPy 2.6 ``brainpy.synapses.PoissonInput`` is the host's deprecated alias).
    """

    active: bool
    reason: str
    deliberate: bool
    host_version: str | None
    supported: str
    switch: str
    targets: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of this status (for ``doctor --json``)."""
        return dataclasses.asdict(self)


def status() -> SwapStatus:
    """Explain whether the swap is active, and why (or why not)."""
    from .. import switches
    from . import version_gate

    active = is_active()
    targets: dict[str, str] = {}
    deliberate = False
    if "brainpy" in sys.modules:
        mod = sys.modules.get("brainpy_poisson_plugin.host.poisson_input")
        cls = getattr(mod, "PoissonInput", None)
        try:
            from brainpy_poisson_plugin.host.compat import original_poisson_input_class

            original = original_poisson_input_class()
        except Exception:  # noqa: BLE001
            original = None
        for name in target_names():
            try:
                obj = _resolved(name)  # includes aliases served by a module __getattr__
            except OverrideError:
                obj = _ABSENT
            if obj is _ABSENT:
                targets[name] = "absent"
            elif cls is not None and obj is cls:
                targets[name] = "plugin"
            elif obj is original:
                targets[name] = "host"
            else:
                targets[name] = "other"
    decision = _last_decision if _last_decision is not None else version_gate.decide(warn=False)
    if active:
        reason = _last_reason or "active"
    elif switches.get(switches.DISABLE_AUTOLOAD) and _last_reason is None:
        reason = "plugin autoload disabled by BRAINPY_DISABLE_PLUGIN_AUTOLOAD=1"
        deliberate = True
    elif "brainpy" not in sys.modules:
        reason = "brainpy has not been imported in this process"
    elif _last_reason is not None:
        reason = _last_reason
        if reason.startswith("active:"):  # allowed, yet some name is not the plugin's class now
            elsewhere = ", ".join(f"{n} is {w}" for n, w in targets.items() if w != "plugin")
            reason = f"not active although allowed ({reason[len('active: '):]}): {elsewhere}"
        deliberate = bool(getattr(decision, "deliberate", False)) or reason.startswith("deactivated")
    else:
        reason = "the plugin loader has not run (is the autoload .pth hook installed?)"
    return SwapStatus(
        active=active,
        reason=reason,
        deliberate=deliberate,
        host_version=getattr(decision, "host_version", None),
        supported=version_gate.SUPPORTED_BRAINPY_TEXT,
        switch=version_gate.switch(),
        targets=targets,
    )
