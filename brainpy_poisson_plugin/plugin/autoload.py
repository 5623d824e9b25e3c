"""Run the BrainPy plugin loader when ``brainpy`` finishes importing.

The installed ``brainpy_poisson_plugin_autoload.pth`` file loads this file at interpreter
start-up *without importing the package* (so neither the package's ``__init__`` nor
anything it may grow to import costs start-up time, and pytest does not see the package
as imported before it could rewrite its plugin): it finds the package directory with the
``sys.meta_path`` finders (this also works in an editable install), executes this file as
the private module ``_brainpy_poisson_plugin_autoload`` and calls :func:`install`.
Importing ``brainpy_poisson_plugin.plugin.autoload`` later gives that same module object,
so there is one state per process. That puts :class:`_BrainPyImportWatcher` at the front of
``sys.meta_path``; it answers for exactly one module, ``brainpy``: it asks the other
finders for the real spec and wraps the spec's loader so that, right after BrainPy's
``__init__`` has run, :func:`brainpy_poisson_plugin.plugin.manager.autoload` loads the
``brainpy.plugins`` entry points and applies their overrides. The watcher then removes
itself and puts BrainPy's own loader back on the module.

Constraints this module keeps:

- Start-up cost: it imports only ``sys`` and ``os`` (already imported by the
  interpreter); pluggy, ``importlib.metadata``, BrainPy and JAX are imported only once
  ``brainpy`` itself is imported.
- It never raises: a failure anywhere leaves ``import brainpy`` exactly as it would be
  without the plugin (and is reported as a warning).
- ``BRAINPY_DISABLE_PLUGIN_AUTOLOAD=1`` (checked at start-up and again at trigger time)
  disables it. The switch's on/off words are defined in
  :mod:`brainpy_poisson_plugin.switches`; this module cannot import that (it would import
  the package), so :func:`_parse_flag` is a copy, and a test checks the two agree. A value
  that is not an on/off word leaves the hook enabled (the default); the loader warns
  about it by name when ``brainpy`` is imported.

:data:`state` says what happened: ``"not-installed"``, ``"disabled"``, ``"waiting"`` (the
watcher is in place), ``"triggered"`` (the loader ran), ``"failed"``.
:data:`started_by` is ``"pth"`` when the ``.pth`` file installed it.
"""

import os
import sys

_ENV_DISABLE = "BRAINPY_DISABLE_PLUGIN_AUTOLOAD"
_TARGET = "brainpy"

# Copy of brainpy_poisson_plugin.switches.TRUE_WORDS / FALSE_WORDS (a test checks it).
_TRUE_WORDS = ("1", "on", "true", "yes")
_FALSE_WORDS = ("0", "off", "false", "no")

state = "not-installed"
started_by = None
error = None


def _parse_flag(text):
    """Copy of ``switches.parse_flag``: True/False for the on/off words, else None."""
    word = text.strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    return None


def _disabled():
    return _parse_flag(os.environ.get(_ENV_DISABLE, "")) is True


class _TriggerLoader:
    """Delegates to BrainPy's real loader; runs the plugin loader after ``exec_module``."""

    def __init__(self, loader, watcher):
        self._bpp_loader = loader
        self._bpp_watcher = watcher

    def __getattr__(self, name):
        return getattr(self._bpp_loader, name)

    def create_module(self, spec):
        create = getattr(self._bpp_loader, "create_module", None)
        return None if create is None else create(spec)

    def exec_module(self, module):
        real = self._bpp_loader
        try:
            real.exec_module(module)
        finally:
            # Put BrainPy's own loader back, so nothing downstream sees this proxy.
            try:
                spec = getattr(module, "__spec__", None)
                if spec is not None and spec.loader is self:
                    spec.loader = real
                if getattr(module, "__loader__", None) is self:
                    module.__loader__ = real
            except Exception:
                pass
        # Only reached when BrainPy imported successfully.
        _trigger()


class _BrainPyImportWatcher:
    """``sys.meta_path`` finder that only ever answers for ``brainpy``."""

    def __init__(self):
        self._busy = False

    def find_spec(self, fullname, path=None, target=None):
        if fullname != _TARGET or self._busy:
            return None
        self._busy = True
        try:
            spec = None
            for finder in list(sys.meta_path):
                if finder is self:
                    continue
                find = getattr(finder, "find_spec", None)
                if find is None:
                    continue
                spec = find(fullname, path, target)
                if spec is not None:
                    break
            if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
                return spec
            spec.loader = _TriggerLoader(spec.loader, self)
            return spec
        except Exception:
            return None  # let the regular machinery find (or fail to find) brainpy
        finally:
            self._busy = False

    def invalidate_caches(self):
        pass


_watcher = None


def _remove():
    global _watcher
    watcher = _watcher
    _watcher = None
    if watcher is not None:
        try:
            while watcher in sys.meta_path:
                sys.meta_path.remove(watcher)
        except Exception:
            pass


def _trigger():
    """Run the loader once. Never raises."""
    global state, error
    _remove()
    if _disabled():
        state = "disabled"
        return
    state = "triggered"
    try:
        from brainpy_poisson_plugin.plugin import manager

        result = manager.autoload()
        if result.startswith("error"):
            state = "failed"
            error = result
    except Exception as exc:
        state = "failed"
        error = f"{type(exc).__name__}: {exc}"
        try:
            import warnings

            warnings.warn(f"brainpy plugin autoload failed: {error}", RuntimeWarning, stacklevel=2)
        except Exception:
            pass


def _brainpy_ready():
    mod = sys.modules.get(_TARGET)
    if mod is None:
        return False
    spec = getattr(mod, "__spec__", None)
    return not getattr(spec, "_initializing", False)


def install(source="manual"):
    """Arrange for the plugin loader to run when ``brainpy`` finishes importing.

    Runs it right away if ``brainpy`` is already imported. Idempotent; never raises.
    ``source`` is recorded in :data:`started_by` (the ``.pth`` file passes ``"pth"``).
    """
    global state, started_by, error, _watcher
    try:
        if started_by is None or source == "pth":
            started_by = source
        if _disabled():
            state = "disabled"
            return
        if state in ("triggered", "failed"):
            return
        if _TARGET in sys.modules:
            if _brainpy_ready():
                _trigger()
            # else: brainpy is importing right now and its loader cannot be wrapped any
            # more; leave state as is (doctor reports it).
            return
        if _watcher is None:
            _watcher = _BrainPyImportWatcher()
            sys.meta_path.insert(0, _watcher)
        state = "waiting"
    except Exception as exc:
        state = "failed"
        error = f"{type(exc).__name__}: {exc}"


#: The name the .pth file loads this module under.
BOOT_NAME = "_brainpy_poisson_plugin_autoload"


def uninstall():
    """Remove the watcher without running the loader (tests)."""
    global state
    _remove()
    if state == "waiting":
        state = "not-installed"


# One state per process: imported as brainpy_poisson_plugin.plugin.autoload after the .pth
# already loaded this file under BOOT_NAME, become that module.
if __name__ != BOOT_NAME:
    _boot = sys.modules.get(BOOT_NAME)
    if _boot is not None and getattr(_boot, "__file__", None) and hasattr(_boot, "install"):
        sys.modules[__name__] = _boot
    del _boot
