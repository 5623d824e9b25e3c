"""The plugin loader (manager), the hook specifications and the autoload import hook, in
this process with fake entry points and fake modules."""

from __future__ import annotations

import importlib.metadata as md
import inspect
import re
import sys
import textwrap
import warnings

import pytest

from brainpy_poisson_plugin.plugin import BrainPyPluginWarning, autoload, hookspecs, manager, swap

GOOD = """
from brainpy_poisson_plugin.plugin.hookspecs import hookimpl

@hookimpl
def brainpy_plugin_info():
    return {"name": "good", "version": "1.0", "supported_host": ">=2.6"}

@hookimpl
def brainpy_component_overrides(host_version):
    return {"brainpy.dyn._bpp_fake_good": ("good", host_version)}
"""

SECOND = """
import pluggy
hookimpl = pluggy.HookimplMarker("brainpy")

@hookimpl
def brainpy_plugin_info():
    return {"name": "second", "version": "2.0"}

@hookimpl
def brainpy_component_overrides():
    return {"brainpy.dyn._bpp_fake_good": "second wants it too", "brainpy.dyn._bpp_fake_second": 2}
"""

RAISES_AT_IMPORT = "raise ImportError('boom at import')"

HOOK_RAISES = """
import pluggy
hookimpl = pluggy.HookimplMarker("brainpy")

@hookimpl
def brainpy_plugin_info():
    return {"name": "hook-raises", "version": "0.1"}

@hookimpl
def brainpy_component_overrides(host_version):
    raise RuntimeError("boom in hook")
"""

BAD_SIGNATURE = """
import pluggy
hookimpl = pluggy.HookimplMarker("brainpy")

@hookimpl
def brainpy_plugin_info(not_an_argument):
    return {}
"""

UNKNOWN_HOOK = """
import pluggy
hookimpl = pluggy.HookimplMarker("brainpy")

@hookimpl
def brainpy_plugin_info():
    return {"name": "typo", "version": "0.1"}

@hookimpl
def brainpy_component_override():  # typo: not a hook of API version 1
    return {}
"""

OPTIONAL_FUTURE_HOOK = """
import pluggy
hookimpl = pluggy.HookimplMarker("brainpy")

@hookimpl
def brainpy_plugin_info():
    return {"name": "future", "version": "0.1"}

@hookimpl(optionalhook=True)
def brainpy_hook_from_api_v7():
    return 1
"""

NO_INFO = """
import pluggy
hookimpl = pluggy.HookimplMarker("brainpy")

@hookimpl
def brainpy_component_overrides():
    return {}
"""

NEEDS_NEWER_API = """
import pluggy
hookimpl = pluggy.HookimplMarker("brainpy")

@hookimpl
def brainpy_plugin_info():
    return {"name": "newer", "version": "0.1", "api_version": 99}
"""

BAD_INFO = """
import pluggy
hookimpl = pluggy.HookimplMarker("brainpy")

@hookimpl
def brainpy_plugin_info():
    return {"name": "badinfo", "version": "0.1", "supported_host": "not a specifier"}
"""

NOT_A_MAPPING = """
import pluggy
hookimpl = pluggy.HookimplMarker("brainpy")

@hookimpl
def brainpy_plugin_info():
    return {"name": "list", "version": "0.1"}

@hookimpl
def brainpy_component_overrides():
    return ["brainpy.dyn.X"]
"""

SYSTEM_EXIT_AT_IMPORT = "raise SystemExit(3)"


@pytest.fixture
def fake_plugins(tmp_path, monkeypatch):
    """Write modules and return a factory for a manager that sees them as entry points."""
    pytest.importorskip("brainpy")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("BRAINPY_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    counter = iter(range(10**6))
    created: list[str] = []

    def make(**plugins: str) -> manager.BrainPyPluginManager:
        eps = []
        for ep_name, source in plugins.items():
            mod = f"bpp_fake_{ep_name}_{next(counter)}"
            (tmp_path / f"{mod}.py").write_text(textwrap.dedent(source))
            created.append(mod)
            eps.append(md.EntryPoint(name=ep_name, value=mod, group=hookspecs.ENTRY_POINT_GROUP))
        mgr = manager.BrainPyPluginManager()
        monkeypatch.setattr(mgr, "entry_points", lambda: sorted(eps, key=lambda e: e.name))
        return mgr

    yield make
    for mod in created:
        sys.modules.pop(mod, None)
    for owner in {o for o, _ in swap.applied_overrides().values()} - {"poisson", swap.OWNER}:
        swap.revert_overrides(owner)


def _status(mgr):
    return {r.name: r.status for r in mgr.plugin_records()}


def test_good_plugin_loads_and_its_overrides_apply(fake_plugins):
    import brainpy as bp

    mgr = fake_plugins(good=GOOD)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mgr.load_entry_points()
        applied = mgr.apply_overrides()
    assert _status(mgr) == {"good": "loaded"}
    assert mgr.records["good"].info == hookspecs.PluginInfo(name="good", version="1.0", supported_host=">=2.6")
    assert applied == {"brainpy.dyn._bpp_fake_good": "good"}
    assert bp.dyn._bpp_fake_good[0] == "good" and bp.dyn._bpp_fake_good[1]  # got host_version
    swap.revert_overrides("good")
    assert not hasattr(bp.dyn, "_bpp_fake_good")


def test_broken_plugins_are_isolated_and_named(fake_plugins):
    import brainpy as bp

    mgr = fake_plugins(
        a_import=RAISES_AT_IMPORT,
        b_hook=HOOK_RAISES,
        c_sig=BAD_SIGNATURE,
        d_typo=UNKNOWN_HOOK,
        e_noinfo=NO_INFO,
        f_newer=NEEDS_NEWER_API,
        g_badinfo=BAD_INFO,
        h_list=NOT_A_MAPPING,
        i_exit=SYSTEM_EXIT_AT_IMPORT,
        j_future=OPTIONAL_FUTURE_HOOK,
        z_good=GOOD,
    )
    with pytest.warns(BrainPyPluginWarning) as record:
        mgr.load_entry_points()
        mgr.apply_overrides()
    messages = [str(w.message) for w in record]
    expected_failures = {
        "a_import": "boom at import",
        "b_hook": "boom in hook",
        "c_sig": "invalid hook implementation",
        "d_typo": "unknown to this loader",
        "e_noinfo": "does not implement brainpy_plugin_info",
        "f_newer": "needs hook API version 99",
        "g_badinfo": "not a version specifier",
        "h_list": "expected a mapping",
        "i_exit": "SystemExit",
    }
    for ep_name, needle in expected_failures.items():
        hits = [m for m in messages if f"'{ep_name} = " in m]
        assert len(hits) == 1, (ep_name, messages)  # exactly one warning, naming the entry point
        assert needle in hits[0], hits[0]
    assert _status(mgr) == {**{k: "failed" for k in expected_failures}, "j_future": "loaded", "z_good": "loaded"}
    assert bp.dyn._bpp_fake_good[0] == "good"  # the healthy plugin still applied


def test_loading_twice_does_not_warn_twice(fake_plugins):
    mgr = fake_plugins(a_import=RAISES_AT_IMPORT)
    with pytest.warns(BrainPyPluginWarning):
        mgr.load_entry_points()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mgr.load_entry_points()
        mgr.apply_overrides()


def test_conflicting_overrides_first_plugin_wins(fake_plugins):
    import brainpy as bp

    mgr = fake_plugins(a_good=GOOD, b_second=SECOND)
    with pytest.warns(BrainPyPluginWarning, match=r"b_second = .*already overridden by plugin 'a_good'"):
        mgr.load_entry_points()
        applied = mgr.apply_overrides()
    assert bp.dyn._bpp_fake_good[0] == "good"
    assert bp.dyn._bpp_fake_second == 2
    assert applied == {"brainpy.dyn._bpp_fake_good": "a_good", "brainpy.dyn._bpp_fake_second": "b_second"}


def test_warnings_as_errors_never_raise(fake_plugins, capsys):
    mgr = fake_plugins(a_import=RAISES_AT_IMPORT, b_hook=HOOK_RAISES)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mgr.load_entry_points()
        mgr.apply_overrides()
    err = capsys.readouterr().err
    assert "a_import = " in err and "b_hook = " in err


@pytest.mark.parametrize("word", ["1", "on", "TRUE", "Yes"])
def test_disable_autoload_env(fake_plugins, monkeypatch, word):
    mgr = fake_plugins(good=GOOD)
    monkeypatch.setenv("BRAINPY_DISABLE_PLUGIN_AUTOLOAD", word)
    assert mgr.load_entry_points() == []
    assert manager.autoload() == "disabled"


@pytest.mark.parametrize("word", ["0", "off", "False", "no"])
def test_disable_autoload_off_words_keep_loading(fake_plugins, monkeypatch, word):
    mgr = fake_plugins(good=GOOD)
    monkeypatch.setenv("BRAINPY_DISABLE_PLUGIN_AUTOLOAD", word)
    assert [r.status for r in mgr.load_entry_points()] == ["loaded"]


def test_disable_autoload_unknown_value_warns_by_name_and_keeps_loading(fake_plugins, monkeypatch):
    from brainpy_poisson_plugin import switches
    from brainpy_poisson_plugin.plugin import SwitchValueWarning

    switches._reset_for_tests()
    mgr = fake_plugins(good=GOOD)
    monkeypatch.setenv("BRAINPY_DISABLE_PLUGIN_AUTOLOAD", "please")
    with pytest.warns(SwitchValueWarning, match="BRAINPY_DISABLE_PLUGIN_AUTOLOAD='please'"):
        assert [r.status for r in mgr.load_entry_points()] == ["loaded"]
    assert autoload._disabled() is False  # the start-up hook's copy reads it the same way


def test_duplicate_entry_point_names(fake_plugins, monkeypatch):
    mgr = fake_plugins(good=GOOD)
    (ep,) = mgr.entry_points()
    dup = md.EntryPoint(name="good", value="bpp_other_module", group=ep.group)
    monkeypatch.setattr(mgr, "entry_points", lambda: [ep, dup])
    with pytest.warns(BrainPyPluginWarning, match="already used"):
        mgr.load_entry_points()
    assert [r.status for r in mgr.plugin_records()] == ["loaded", "duplicate"]


def test_this_package_is_registered_as_an_entry_point():
    eps = {ep.name: ep.value for ep in md.entry_points(group="brainpy.plugins")}
    assert eps.get("poisson") == "brainpy_poisson_plugin.plugin.hooks"


def test_own_hooks_validate_against_the_specs():
    import pluggy

    from brainpy_poisson_plugin.plugin import hooks

    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(hooks, name="poisson")
    pm.check_pending()
    (info,) = pm.hook.brainpy_plugin_info()
    info = manager.plugin_info_from_hook_result(info)
    assert info.name == "brainpy-poisson-plugin" and info.supported_host == ">=2.6,<2.10"
    assert info.api_version == hookspecs.HOOKSPEC_API_VERSION


def test_hookspecs_are_documented_and_versioned():
    assert isinstance(hookspecs.HOOKSPEC_API_VERSION, int) and hookspecs.HOOKSPEC_API_VERSION >= 1
    specs = [f for name, f in vars(hookspecs).items() if name.startswith("brainpy_") and callable(f)]
    assert {f.__name__ for f in specs} >= {"brainpy_plugin_info", "brainpy_component_overrides"}
    for f in specs:
        doc = inspect.getdoc(f) or ""
        # pytest's field style: one :param: per argument, what the hook returns, and when it is called.
        for arg in inspect.signature(f).parameters:
            assert f":param {arg}:" in doc, (f.__name__, arg)
        assert ":returns:" in doc and "Called " in doc, f.__name__


def test_hookspec_module_holds_no_validation_code():
    """The specification module declares hooks and data; checking results is the loader's job."""
    functions = [
        name
        for name, obj in vars(hookspecs).items()
        if inspect.isfunction(obj) and obj.__module__ == hookspecs.__name__
    ]
    assert sorted(functions) == ["brainpy_component_overrides", "brainpy_plugin_info"]
    assert [
        name
        for name in vars(hookspecs.PluginInfo)
        if not name.startswith("_") and callable(getattr(hookspecs.PluginInfo, name))
    ] == []


@pytest.mark.parametrize(
    ("result", "error"),
    [
        ([("name", "x")], "mapping or PluginInfo"),
        ({"version": "1"}, "'name' must be a non-empty string"),
        ({"name": "x", "version": ""}, "'version' must be a non-empty string"),
        ({"name": "x", "version": "1", "supported_host": "~~2"}, "supported_host='~~2' is not a version specifier"),
        ({"name": "x", "version": "1", "api_version": True}, "api_version must be a positive int"),
        ({"name": "x", "version": "1", "api_version": 0}, "api_version must be a positive int"),
    ],
)
def test_plugin_info_checks_name_the_field(result, error):
    with pytest.raises((TypeError, ValueError), match=re.escape(error)):
        manager.plugin_info_from_hook_result(result)


def test_plugin_info_drops_unknown_fields_and_accepts_dataclasses():
    info = manager.plugin_info_from_hook_result({"name": "x", "version": "1", "future_field": 3})
    assert info == hookspecs.PluginInfo(name="x", version="1")
    assert manager.plugin_info_from_hook_result(info) == info


# --------------------------------------------------------------------------------------
# The autoload import hook, on a fake target module
# --------------------------------------------------------------------------------------


@pytest.fixture
def fake_target(tmp_path, monkeypatch):
    """Point the watcher at a fresh fake package and count the loader runs."""
    name = "bpp_fake_brainpy_pkg"
    pkg = tmp_path / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(autoload, "_TARGET", name)
    monkeypatch.setattr(autoload, "state", "not-installed")
    monkeypatch.setattr(autoload, "_watcher", None)
    monkeypatch.delenv("BRAINPY_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    calls = []
    monkeypatch.setattr(manager, "autoload", lambda: calls.append(sys.modules.get(name)) or "ok")
    yield name, pkg, calls
    autoload.uninstall()
    sys.modules.pop(name, None)


def test_watcher_runs_loader_once_after_the_module_finished_importing(fake_target):
    name, _pkg, calls = fake_target
    autoload.install()
    assert autoload.state == "waiting"
    assert any(type(f).__name__ == "_BrainPyImportWatcher" for f in sys.meta_path)
    mod = importlib_import(name)
    assert len(calls) == 1 and calls[0] is mod and mod.VALUE == 1  # ran after __init__ finished
    assert type(mod.__loader__).__name__ == "SourceFileLoader"
    assert mod.__spec__.loader is mod.__loader__
    assert not any(type(f).__name__ == "_BrainPyImportWatcher" for f in sys.meta_path)  # removed itself
    assert autoload.state == "triggered"
    autoload.install()
    assert len(calls) == 1


def test_failed_import_propagates_unchanged_and_keeps_waiting(fake_target):
    name, pkg, calls = fake_target
    (pkg / "__init__.py").write_text("raise ValueError('host import error')\n")
    autoload.install()
    with pytest.raises(ValueError, match="host import error"):
        importlib_import(name)
    assert calls == [] and autoload.state == "waiting"


def test_install_after_import_runs_immediately(fake_target):
    name, _pkg, calls = fake_target
    importlib_import(name)
    autoload.install()
    assert len(calls) == 1 and autoload.state == "triggered"


def test_install_respects_disable_env(fake_target, monkeypatch):
    name, _pkg, calls = fake_target
    monkeypatch.setenv("BRAINPY_DISABLE_PLUGIN_AUTOLOAD", "1")
    autoload.install()
    importlib_import(name)
    assert calls == [] and autoload.state == "disabled"


def test_loader_exception_never_escapes(fake_target, monkeypatch):
    name, _pkg, _calls = fake_target

    def boom():
        raise RuntimeError("loader bug")

    monkeypatch.setattr(manager, "autoload", boom)
    autoload.install()
    with pytest.warns(RuntimeWarning, match="loader bug"):
        mod = importlib_import(name)
    assert mod.VALUE == 1 and autoload.state == "failed"


def importlib_import(name):
    import importlib

    sys.modules.pop(name, None)
    return importlib.import_module(name)
