"""The override ledger: rebind public names on host modules, and put back exactly what was there.

Any plugin's ``brainpy_component_overrides`` go through here (the plugin manager calls
:func:`apply_overrides`), and so does this package's own swap (:mod:`.swap`). Per dotted
name the ledger remembers what the module itself bound before (its ``__dict__`` entry,
or *nothing*), so :func:`revert_overrides` restores the host's objects identically and
deletes names that did not exist.

A name the host serves from a module ``__getattr__`` (PEP 562; BrainPy 2.6 serves the
deprecated ``brainpy.synapses.PoissonInput`` that way) is shadowed by the override's
``__dict__`` binding and answered by the hook again once the override is reverted: the
hook is never replaced, called or cached into the module by the ledger.

Only names under the host's packages (:data:`HOST_ROOTS`) may be overridden, and never in
the module that defines the object (the host's own class must stay reachable there).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
import sys
import threading
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "ABSENT",
    "HOST_ROOTS",
    "OverrideError",
    "applied_overrides",
    "apply_overrides",
    "bound",
    "owners_of",
    "resolved",
    "revert_overrides",
]

#: Top-level packages whose names may be overridden: BrainPy itself, and ``brainpy_state``
#: (BrainPy 2.8 serves ``brainpy.state`` from that separate package).
HOST_ROOTS = ("brainpy", "brainpy_state")


class _Absent:
    """The marker for "the module binds nothing here"."""

    def __repr__(self) -> str:
        return "<absent>"


#: Returned by :func:`bound` / :func:`resolved` when nothing answers at a name.
ABSENT: Any = _Absent()

_lock = threading.RLock()


@dataclasses.dataclass
class _Entry:
    previous: Any  # the object the module bound before, or ABSENT
    replacement: Any
    owner: str


#: dotted name -> what the ledger did there (insertion order = application order).
_ledger: dict[str, _Entry] = {}


class OverrideError(ValueError):
    """A requested override cannot be applied (bad name, defining module, conflict)."""


def _split(name: str) -> tuple[Any, str]:
    """The module and attribute of the dotted ``name`` (imports the module)."""
    if not isinstance(name, str) or name.split(".", 1)[0] not in HOST_ROOTS or name.count(".") < 1:
        roots = " or ".join(f"'{r}.'" for r in HOST_ROOTS)
        raise OverrideError(f"override name must be a dotted name under {roots}, got {name!r}")
    modname, _, attr = name.rpartition(".")
    if not attr.isidentifier():
        raise OverrideError(f"override name {name!r} does not end in an identifier")
    try:
        module = importlib.import_module(modname)
    except Exception as exc:
        raise OverrideError(f"cannot override {name!r}: module {modname!r} is not importable ({exc})") from None
    return module, attr


def _source_file(obj: Any) -> str | None:
    """The file whose code defines ``obj`` (a function, or a class through its methods)."""
    code = getattr(obj, "__code__", None)
    if code is not None:
        return code.co_filename
    if isinstance(obj, type):
        for member in vars(obj).values():
            func = getattr(member, "__func__", member)  # staticmethod / classmethod
            code = getattr(func, "__code__", None)
            if code is not None:
                return code.co_filename
    return None


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def _defined_in(obj: Any, module: Any) -> bool:
    """Whether ``module`` is where ``obj`` was defined.

    Decided by the source file of the object's code where it has one: BrainPy sets
    ``__module__ = 'brainpy.state'`` on classes defined in ``brainpy.state.inputs``, so
    ``__module__`` alone would call a re-exporting package the defining module. Objects
    without Python code fall back to ``__module__``.
    """
    source = _source_file(obj)
    module_file = getattr(module, "__file__", None)
    if source is not None and module_file:
        return _same_file(source, module_file)
    return getattr(obj, "__module__", None) == module.__name__


def bound(name: str) -> Any:
    """What the module itself binds at the dotted ``name`` (its ``__dict__``), or :data:`ABSENT`.

    Raises :class:`OverrideError` for a name outside :data:`HOST_ROOTS` or an unimportable module.
    """
    module, attr = _split(name)
    return vars(module).get(attr, ABSENT)


def resolved(name: str) -> Any:
    """What ``module.attr`` answers: the ``__dict__`` entry, else the module's ``__getattr__``.

    The hook's warnings (BrainPy's deprecation warnings) are suppressed. Returns
    :data:`ABSENT` when neither answers, ``None`` when the host's hook itself fails.
    Raises :class:`OverrideError` like :func:`bound`.
    """
    module, attr = _split(name)
    obj = vars(module).get(attr, ABSENT)
    if obj is not ABSENT:
        return obj
    hook = vars(module).get("__getattr__")
    if not callable(hook):
        return ABSENT
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return hook(attr)
        except AttributeError:
            return ABSENT
        except Exception:
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
            current = vars(module).get(attr, ABSENT)
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
            if current is not ABSENT and _defined_in(current, module):
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
    host serves from a module ``__getattr__`` is then answered by that hook again). A
    name that was rebound by someone else after the override is left as it is (and
    forgotten). Returns the names restored, most recent first.
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
            if vars(module).get(attr, ABSENT) is not entry.replacement:
                continue
            if entry.previous is ABSENT:
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


def owners_of(replacements: Iterable[Any]) -> set[str]:
    """The owners of every recorded override whose replacement is one of ``replacements``."""
    objects = list(replacements)
    with _lock:
        return {e.owner for e in _ledger.values() if any(e.replacement is obj for obj in objects)}
