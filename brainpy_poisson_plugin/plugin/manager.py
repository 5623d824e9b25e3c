"""The plugin loader BrainPy lacks.

:class:`BrainPyPluginManager` wraps a ``pluggy.PluginManager("brainpy")`` and

1. reads the ``brainpy.plugins`` entry points itself (``importlib.metadata``), sorted by
   name and de-duplicated, loading each one in its own ``try``/``except`` (pluggy's
   ``load_setuptools_entrypoints`` would abort the whole load on the first broken plugin);
2. registers each loaded object and validates it on its own (pluggy's signature checks
   at ``register``, then ``check_pending`` so a hook unknown to this loader is caught
   while only that plugin can be responsible), calls its ``brainpy_plugin_info`` and
   checks the result;
3. calls every other hook *per plugin* (``subset_hook_caller``), so a hook that raises
   only removes that plugin's contribution;
4. applies the component overrides through :mod:`.swap`'s ledger.

Every problem becomes one :class:`~brainpy_poisson_plugin.plugin.BrainPyPluginWarning`
naming the entry point (``name = value`` from distribution ``dist``), and the plugin is
skipped. Nothing here ever raises into ``import brainpy``.

``BRAINPY_DISABLE_PLUGIN_AUTOLOAD=1`` (any on word, see :mod:`brainpy_poisson_plugin.switches`)
disables the loading of every ``brainpy.plugins`` entry point; ``BRAINPY_PLUGIN_DEBUG=1``
adds the traceback to each warning.
"""

from __future__ import annotations

import dataclasses
import threading
import traceback
from typing import Any

import pluggy

from .. import switches
from . import hookspecs
from ._warnings import BrainPyPluginWarning, emit_warning
from .version_gate import found_host_version

ENV_DISABLE_AUTOLOAD = switches.DISABLE_AUTOLOAD.name


def autoload_disabled() -> bool:
    """Whether ``BRAINPY_DISABLE_PLUGIN_AUTOLOAD`` is set to an on word (``1``, ``on``, ...)."""
    return bool(switches.get(switches.DISABLE_AUTOLOAD))


@dataclasses.dataclass
class PluginRecord:
    """What the loader knows about one entry point.

    ``status`` is one of ``"loaded"`` (registered and healthy), ``"failed"`` (import,
    validation or a hook failed; ``error`` says how) or ``"duplicate"``.
    """

    name: str
    value: str
    dist: str | None = None
    dist_version: str | None = None
    status: str = "pending"
    error: str | None = None
    info: hookspecs.PluginInfo | None = None
    overrides: list[str] = dataclasses.field(default_factory=list)

    @property
    def label(self) -> str:
        """The entry point as ``entry point 'name = value'`` plus its distribution, for messages."""
        origin = f" (from {self.dist} {self.dist_version})" if self.dist else ""
        return f"entry point '{self.name} = {self.value}'{origin}"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of this record (for ``doctor --json``)."""
        data = dataclasses.asdict(self)
        data["info"] = dataclasses.asdict(self.info) if self.info is not None else None
        return data


def _short_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def plugin_info_from_hook_result(result: Any) -> hookspecs.PluginInfo:
    """Check and normalise what a ``brainpy_plugin_info`` implementation returned.

    Accepts a :class:`~.hookspecs.PluginInfo`, a mapping or another dataclass instance with
    the same fields; fields this loader does not know are dropped (newer plugins may add
    some). Raises ``TypeError``/``ValueError`` naming the field when the result is unusable.
    """
    from collections.abc import Mapping

    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    if isinstance(result, Mapping):
        data = dict(result)
    elif dataclasses.is_dataclass(result) and not isinstance(result, type):
        data = dataclasses.asdict(result)
    else:
        raise TypeError(f"brainpy_plugin_info must return a mapping or PluginInfo, got {type(result).__name__}")
    known = {f.name for f in dataclasses.fields(hookspecs.PluginInfo)}
    data = {key: value for key, value in data.items() if key in known}
    for required in ("name", "version"):
        if not isinstance(data.get(required), str) or not data[required]:
            got = data.get(required)
            raise ValueError(f"brainpy_plugin_info: {required!r} must be a non-empty string, got {got!r}")
    spec = str(data.get("supported_host", "") or "")
    try:
        SpecifierSet(spec)
    except InvalidSpecifier as exc:
        raise ValueError(f"brainpy_plugin_info: supported_host={spec!r} is not a version specifier: {exc}") from None
    data["supported_host"] = spec
    api = data.get("api_version", 1)
    if not isinstance(api, int) or isinstance(api, bool) or api < 1:
        raise ValueError(f"brainpy_plugin_info: api_version must be a positive int, got {api!r}")
    return hookspecs.PluginInfo(**data)


class BrainPyPluginManager:
    """Loads, validates and applies ``brainpy.plugins`` plugins (see the module docstring)."""

    def __init__(self, group: str = hookspecs.ENTRY_POINT_GROUP) -> None:
        self.group = group
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}
        self.loaded = False
        self._warned: set[tuple[str, str]] = set()
        self._lock = threading.RLock()

    # -- reporting ---------------------------------------------------------------------

    def _fail(self, record: PluginRecord, what: str, exc: BaseException | str | None = None) -> None:
        detail = exc if isinstance(exc, str) else (_short_error(exc) if exc is not None else "")
        record.status = "failed"
        record.error = f"{what}: {detail}" if detail else what
        plugin = self.pm.get_plugin(record.name)
        if plugin is not None:
            try:
                self.pm.unregister(plugin, name=record.name)
            except Exception:
                pass
        self.warn(record, f"brainpy plugin {record.label} skipped: {record.error}")

    def warn(self, record: PluginRecord, message: str) -> None:
        """Emit ``message`` once per (entry point, message)."""
        key = (record.name, message)
        if key in self._warned:
            return
        self._warned.add(key)
        if switches.get(switches.PLUGIN_DEBUG):
            message += "\n" + traceback.format_exc()
        emit_warning(message, BrainPyPluginWarning, stacklevel=4)

    # -- loading -----------------------------------------------------------------------

    def entry_points(self) -> list[Any]:
        """The ``brainpy.plugins`` entry points, sorted by name, duplicates removed."""
        from importlib.metadata import entry_points

        seen: set[tuple[str, str]] = set()
        unique = []
        for ep in sorted(entry_points(group=self.group), key=lambda e: (e.name, e.value)):
            key = (ep.name, ep.value)
            if key in seen:
                continue
            seen.add(key)
            unique.append(ep)
        return unique

    def load_entry_points(self) -> list[PluginRecord]:
        """Load and register every entry point once (idempotent). Never raises."""
        with self._lock:
            if self.loaded:
                return list(self.records.values())
            self.loaded = True
            if autoload_disabled():
                return []
            try:
                eps = self.entry_points()
            except Exception as exc:  # broken metadata on sys.path
                emit_warning(
                    f"brainpy plugins: cannot read the {self.group!r} entry points: {_short_error(exc)}",
                    BrainPyPluginWarning,
                )
                return []
            for ep in eps:
                dist = getattr(ep, "dist", None)
                record = PluginRecord(
                    name=ep.name,
                    value=ep.value,
                    dist=getattr(dist, "name", None),
                    dist_version=getattr(dist, "version", None),
                )
                if ep.name in self.records:
                    record.status = "duplicate"
                    record.error = f"entry-point name {ep.name!r} already used by {self.records[ep.name].label}"
                    self.records[f"{ep.name}#{ep.value}"] = record
                    self.warn(record, f"brainpy plugin {record.label} skipped: {record.error}")
                    continue
                self.records[ep.name] = record
                try:
                    plugin = ep.load()
                except BaseException as exc:  # includes SystemExit from a plugin
                    if isinstance(exc, KeyboardInterrupt):
                        raise
                    self._fail(record, "import failed", exc)
                    continue
                self.register(plugin, record)
            return list(self.records.values())

    def register(self, plugin: Any, record: PluginRecord) -> bool:
        """Register and validate one plugin object; on any problem unregister and warn."""
        try:
            self.pm.register(plugin, name=record.name)
        except Exception as exc:  # PluginValidationError, ValueError (dup)
            self._fail(record, "invalid hook implementation", exc)
            return False
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            self._fail(
                record,
                "implements a hook unknown to this loader "
                f"(API version {hookspecs.HOOKSPEC_API_VERSION}; mark it optionalhook=True)",
                exc,
            )
            return False
        # Info: mandatory, checked.
        caller = self._caller_for("brainpy_plugin_info", plugin)
        if caller is None or not caller.get_hookimpls():
            self._fail(record, "does not implement brainpy_plugin_info")
            return False
        try:
            results = caller()
            if len(results) != 1:
                raise ValueError(f"expected one result, got {len(results)}")
            info = plugin_info_from_hook_result(results[0])
        except Exception as exc:
            self._fail(record, "brainpy_plugin_info raised", exc)
            return False
        if info.api_version > hookspecs.HOOKSPEC_API_VERSION:
            self._fail(
                record, f"needs hook API version {info.api_version}, this loader has {hookspecs.HOOKSPEC_API_VERSION}"
            )
            return False
        record.info = info
        record.status = "loaded"
        return True

    def _caller_for(self, hook_name: str, plugin: Any) -> Any:
        others = [p for p in self.pm.get_plugins() if p is not plugin]
        try:
            return self.pm.subset_hook_caller(hook_name, remove_plugins=others)
        except Exception:
            return None

    def call_each(self, hook_name: str, **kwargs: Any) -> list[tuple[PluginRecord, Any]]:
        """Call ``hook_name`` for each healthy plugin separately; a raising plugin is skipped.

        Returns ``[(record, result)]`` in entry-point order, leaving out plugins that do
        not implement the hook or returned ``None``.
        """
        out: list[tuple[PluginRecord, Any]] = []
        for record in list(self.records.values()):
            if record.status != "loaded":
                continue
            plugin = self.pm.get_plugin(record.name)
            if plugin is None:
                continue
            caller = self._caller_for(hook_name, plugin)
            if caller is None or not caller.get_hookimpls():
                continue
            try:
                results = caller(**kwargs)
            except Exception as exc:
                self._fail(record, f"hook {hook_name} raised", exc)
                continue
            for result in results:
                if result is not None:
                    out.append((record, result))
        return out

    # -- overrides ---------------------------------------------------------------------

    def apply_overrides(self) -> dict[str, str]:
        """Collect ``brainpy_component_overrides`` from every plugin and apply them.

        Returns ``{dotted name: entry-point name}`` for what was applied. Never raises.
        """
        from collections.abc import Mapping

        from . import swap

        applied: dict[str, str] = {}
        host_version = found_host_version() or ""
        for record, result in self.call_each("brainpy_component_overrides", host_version=host_version):
            if not isinstance(result, Mapping):
                self._fail(record, f"brainpy_component_overrides returned {type(result).__name__}, expected a mapping")
                continue
            try:
                problems = swap.apply_overrides(result, owner=record.name)
            except Exception as exc:
                self._fail(record, "applying its overrides failed", exc)
                continue
            for name, problem in problems.items():
                self.warn(record, f"brainpy plugin {record.label}: override {name!r} not applied: {problem}")
            for name in result:
                if name not in problems:
                    applied[name] = record.name
                    if name not in record.overrides:
                        record.overrides.append(name)
        return applied

    def plugin_records(self) -> list[PluginRecord]:
        """One record per discovered entry point: name, status and error, in load order."""
        return list(self.records.values())


_manager: BrainPyPluginManager | None = None
_manager_lock = threading.Lock()

#: Result of the last :func:`autoload` run: ``None`` (never ran), ``"ok"``, ``"disabled"``
#: or ``"error: ..."``.
last_autoload: str | None = None


def get_manager() -> BrainPyPluginManager:
    """The process-wide manager (created on first use)."""
    global _manager
    with _manager_lock:
        if _manager is None:
            _manager = BrainPyPluginManager()
        return _manager


def autoload() -> str:
    """Load all ``brainpy.plugins`` entry points and apply their overrides. Never raises.

    This is what the ``.pth`` import hook runs when ``brainpy`` finishes importing.
    Returns (and stores in :data:`last_autoload`) ``"ok"``, ``"disabled"`` or
    ``"error: ..."``.
    """
    global last_autoload
    if autoload_disabled():
        last_autoload = "disabled"
        return last_autoload
    try:
        mgr = get_manager()
        mgr.load_entry_points()
        mgr.apply_overrides()
        last_autoload = "ok"
    except Exception as exc:  # never break `import brainpy`
        last_autoload = f"error: {_short_error(exc)}"
        emit_warning(f"brainpy plugin loader failed: {_short_error(exc)}", BrainPyPluginWarning)
    return last_autoload


def _reset_for_tests() -> None:
    """Drop the process-wide manager (tests only)."""
    global _manager, last_autoload
    with _manager_lock:
        _manager = None
    last_autoload = None
