"""The swap and the version gate, in this process (the installed-wheel versions of these
checks are in test_autoload_install.py)."""

from __future__ import annotations

import importlib
import sys
import tomllib
import types
import warnings
from pathlib import Path

import pytest
from packaging.requirements import Requirement

bp = pytest.importorskip("brainpy")

from brainpy_poisson_plugin.host import compat
from brainpy_poisson_plugin.host.compat import original_poisson_input_class
from brainpy_poisson_plugin.plugin import HostVersionWarning, swap, version_gate

HOST = original_poisson_input_class()
HOST_HAD_SYNAPSES_NAME = "PoissonInput" in vars(bp.synapses) and vars(bp.synapses)["PoissonInput"] is HOST


def _defining_module():
    """The module where this BrainPy defines PoissonInput, found from what exists.

    ``brainpy.dyn.projections.inputs`` on 2.7+; ``brainpy._src.dyn.projections.inputs`` on
    2.4.3-2.6 (where ``brainpy.dyn.projections`` is a plain module re-exporting it).
    """
    for name in ("brainpy.dyn.projections.inputs", "brainpy._src.dyn.projections.inputs"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if "PoissonInput" in vars(module):
            return module
    pytest.fail("this BrainPy defines PoissonInput in none of the known modules")


DEFINING = _defining_module()


def _access(module, name="PoissonInput"):
    """What ``module.name`` answers (incl. a module ``__getattr__``) and the warnings it raises."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            obj = getattr(module, name)
        except AttributeError:
            obj = AttributeError
    return obj, sorted({(w.category.__name__, str(w.message)) for w in caught})


@pytest.fixture(autouse=True)
def _restore_swap_state(monkeypatch):
    for var in ("BRAINPY_POISSON_PLUGIN", "BRAINPY_POISSON_FAKE_HOST_VERSION"):
        monkeypatch.delenv(var, raising=False)
    version_gate._reset_for_tests()
    was_active = swap.is_active()
    yield
    if was_active:
        swap.activate(force=True)
    else:
        swap.deactivate()


def _plugin_class():
    return swap.plugin_class()


def test_supported_range_matches_pyproject_pin():
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    (req,) = [Requirement(r) for r in pyproject["project"]["dependencies"] if Requirement(r).name == "brainpy"]
    assert req.specifier == version_gate.SUPPORTED_BRAINPY
    assert str(req.specifier) == str(version_gate.SUPPORTED_BRAINPY)


def test_activate_rebinds_every_reexport_but_not_the_defining_module():
    assert swap.activate() is True
    cls = _plugin_class()
    assert bp.dyn.PoissonInput is cls
    assert bp.synapses.PoissonInput is cls
    if "PoissonInput" in vars(bp.dyn.projections):
        assert bp.dyn.projections.PoissonInput is cls
    # The defining module is never modified: the class there is still the host's own.
    assert vars(DEFINING)["PoissonInput"] is HOST
    assert HOST.__module__ == DEFINING.__name__ and HOST is not cls
    assert issubclass(cls, HOST)
    assert swap.is_active()
    st = swap.status()
    assert st.active and set(st.targets.values()) == {"plugin"}


def test_deactivate_restores_exactly():
    swap.deactivate()
    modules = (bp.dyn, bp.dyn.projections, bp.synapses, DEFINING)
    before = {m: dict(vars(m)) for m in modules}
    # What attribute access answers, incl. a host module __getattr__: on BrainPy 2.6
    # bp.synapses.PoissonInput is the host's class from a deprecation __getattr__ (with a
    # DeprecationWarning); on 2.7+ it is an AttributeError.
    access_before = {m: _access(m) for m in modules}
    swap.activate()
    swap.activate()  # idempotent: the original objects are still what gets restored
    assert _access(bp.synapses) == (_plugin_class(), [])  # the binding shadows any __getattr__
    restored = swap.deactivate()
    assert "brainpy.dyn.PoissonInput" in restored
    for mod, snapshot in before.items():
        now = dict(vars(mod))
        assert now.keys() == snapshot.keys(), mod.__name__
        assert all(now[k] is snapshot[k] for k in snapshot), mod.__name__
        assert _access(mod) == access_before[mod], mod.__name__
    assert bp.dyn.PoissonInput is HOST
    assert ("PoissonInput" in vars(bp.synapses)) is HOST_HAD_SYNAPSES_NAME
    st = swap.status()
    assert not st.active and st.deliberate and "deactivate" in st.reason


@pytest.mark.parametrize("start_active", [False, True])
def test_swapped_context_manager_restores_previous_state(start_active):
    if start_active:
        swap.activate()
    else:
        swap.deactivate()
    with swap.swapped() as active:
        assert active and bp.dyn.PoissonInput is _plugin_class()
    assert swap.is_active() is start_active
    with pytest.raises(KeyError):
        with swap.swapped():
            raise KeyError("inside")
    assert swap.is_active() is start_active


def test_existing_model_code_builds_a_plugin_instance():
    with swap.swapped():
        var = bp.math.Variable(bp.math.zeros(8))
        node = bp.dyn.PoissonInput(var, 10, 5.0, 0.5)
        assert isinstance(node, HOST) and isinstance(node, bp.dyn.PoissonInput)
        assert type(node) is _plugin_class()


def test_switch_off_and_force(monkeypatch):
    swap.deactivate()
    monkeypatch.setenv("BRAINPY_POISSON_PLUGIN", "0")
    assert swap.activate() is False
    st = swap.status()
    assert st.deliberate and "BRAINPY_POISSON_PLUGIN=0" in st.reason and st.switch == "off"
    assert swap.activate(force=True) is True  # an explicit force always swaps


def test_version_gate_refuses_fake_out_of_range_version_once(monkeypatch):
    swap.deactivate()
    monkeypatch.setenv("BRAINPY_POISSON_FAKE_HOST_VERSION", "3.0.0")
    with pytest.warns(HostVersionWarning, match=r"3\.0\.0.*>=2\.6,<2\.10"):
        assert swap.activate() is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert swap.activate() is False  # one warning per process, not per call
    assert bp.dyn.PoissonInput is HOST
    st = swap.status()
    assert not st.active and not st.deliberate and "3.0.0" in st.reason
    monkeypatch.setenv("BRAINPY_POISSON_PLUGIN", "force")
    assert swap.activate() is True
    assert "force" in swap.status().reason


@pytest.mark.parametrize(
    ("version", "allowed"),
    [
        ("2.6.0", True),
        ("2.6.1", True),
        ("2.8.2", True),
        ("2.8.3rc1", True),
        ("2.9.0", True),
        ("2.9.0rc1", True),
        ("2.10.0", False),
        ("2.10.0rc1", False),
        ("2.5.9", False),
        ("3.0", False),
        ("not-a-version", False),
    ],
)
def test_gate_decisions(version, allowed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        decision = version_gate.decide(version)
    assert decision.allowed is allowed
    assert decision.host_version == version


def test_unknown_switch_value_warns_and_acts_as_unset(monkeypatch):
    monkeypatch.setenv("BRAINPY_POISSON_PLUGIN", "maybe")
    with pytest.warns(UserWarning, match="BRAINPY_POISSON_PLUGIN"):
        assert version_gate.switch() == "auto"


def test_ledger_creates_and_removes_absent_names_and_refuses_defining_module():
    name = "brainpy.dyn._bpp_test_attribute"
    sentinel = object()
    assert swap.apply_overrides({name: sentinel}, owner="t1") == {}
    assert bp.dyn._bpp_test_attribute is sentinel
    problems = swap.apply_overrides({name: object()}, owner="t2")
    assert "already overridden by plugin 't1'" in problems[name]
    defining_name = f"{DEFINING.__name__}.PoissonInput"
    problems = swap.apply_overrides(
        {defining_name: object(), "numpy.zeros": object(), "brainpy.nope.X": 1},
        owner="t1",
    )
    assert "defines it" in problems[defining_name]
    assert vars(DEFINING)["PoissonInput"] is HOST
    assert "under 'brainpy.'" in problems["numpy.zeros"]
    assert "not importable" in problems["brainpy.nope.X"]
    assert swap.revert_overrides("t1") == [name]
    assert not hasattr(bp.dyn, "_bpp_test_attribute")


def test_ledger_shadows_a_module_getattr_and_reverting_gives_it_back(monkeypatch):
    """A name served by a module ``__getattr__`` (how BrainPy 2.6 serves the deprecated
    ``bp.synapses.PoissonInput``) is shadowed by an override and answered by the hook again
    after the revert: the hook is neither replaced nor called nor cached into the module."""
    calls = []

    def hook(name):
        if name == "Lazy":
            calls.append(name)
            warnings.warn("Lazy is deprecated", DeprecationWarning, stacklevel=2)
            return HOST
        raise AttributeError(name)

    module = types.ModuleType("brainpy._bpp_test_lazy_module")
    module.__getattr__ = hook
    monkeypatch.setitem(sys.modules, module.__name__, module)
    keys = set(vars(module))
    before = _access(module, "Lazy")
    assert before[0] is HOST and before[1] == [("DeprecationWarning", "Lazy is deprecated")]
    sentinel = object()
    name = f"{module.__name__}.Lazy"
    assert swap.apply_overrides({name: sentinel}, owner="t3") == {}
    assert _access(module, "Lazy") == (sentinel, [])
    n_calls = len(calls)
    assert swap.revert_overrides("t3") == [name]
    assert len(calls) == n_calls  # reverting does not call the hook
    assert set(vars(module)) == keys and vars(module)["__getattr__"] is hook
    assert _access(module, "Lazy") == before


def test_status_reports_what_attribute_access_answers():
    """``status().targets`` reflects a host alias served by a module ``__getattr__``
    (BrainPy 2.6: bp.synapses.PoissonInput is the host's class) as "host", not "absent"."""
    swap.deactivate()
    targets = swap.status().targets
    assert targets["brainpy.dyn.PoissonInput"] == "host"
    obj, _ = _access(bp.synapses)
    expected = "absent" if obj is AttributeError else ("host" if obj is HOST else "other")
    assert targets["brainpy.synapses.PoissonInput"] == expected
    swap.activate()
    assert set(swap.status().targets.values()) == {"plugin"}


# --------------------------------------------------------------------------------------
# brainpy.state (BrainPy 2.8 via brainpy_state, 2.9 bundled)
# --------------------------------------------------------------------------------------

HAS_STATE = compat.has_state_api()
needs_state = pytest.mark.skipif(not HAS_STATE, reason=f"BrainPy {bp.__version__} lacks brainpy.state (added in 2.8)")


def _state_modules():
    """The public brainpy.state modules of this host that are imported, and the defining one."""
    public = [sys.modules[m] for m in compat.STATE_PUBLIC_MODULES if m in sys.modules]
    return public, compat.state_inputs_module()


@needs_state
def test_activate_rebinds_the_brainpy_state_names():
    from brainpy_poisson_plugin.host import state_inputs

    swap.deactivate()
    public, defining = _state_modules()
    host_cls, host_fn = defining.PoissonInput, defining.poisson_input
    assert bp.state.PoissonInput is host_cls and bp.state.poisson_input is host_fn
    assert swap.activate() is True
    for module in public:
        assert module.PoissonInput is state_inputs.PoissonInput, module.__name__
        assert module.poisson_input is state_inputs.poisson_input, module.__name__
    # The defining module is never modified; the plugin's class is the host's subclass.
    assert vars(defining)["PoissonInput"] is host_cls and vars(defining)["poisson_input"] is host_fn
    assert issubclass(bp.state.PoissonInput, host_cls)
    names = swap.target_names()
    assert "brainpy.state.PoissonInput" in names and "brainpy.state.poisson_input" in names
    st = swap.status()
    assert st.active and set(st.targets.values()) == {"plugin"}
    assert set(st.state_forms) == {"served", "delegated"}


@needs_state
def test_deactivate_restores_the_brainpy_state_modules_exactly():
    swap.deactivate()
    public, defining = _state_modules()
    modules = [*public, defining]
    before = {m: dict(vars(m)) for m in modules}
    swap.activate()
    restored = swap.deactivate()
    assert {"brainpy.state.PoissonInput", "brainpy.state.poisson_input"} <= set(restored)
    for mod, snapshot in before.items():
        now = dict(vars(mod))
        assert now.keys() == snapshot.keys(), mod.__name__
        assert all(now[k] is snapshot[k] for k in snapshot), mod.__name__
    assert set(swap.status().targets.values()) <= {"host", "absent"}


@needs_state
def test_state_model_code_builds_a_plugin_instance():
    import brainstate
    import brainunit as u

    from brainpy_poisson_plugin.host import state_inputs

    with swap.swapped():
        neuron = bp.state.LIF(10)
        node = bp.state.PoissonInput(neuron.prefetch("V"), None, 100, 10.0 * u.Hz, 0.5 * u.mV)
        assert type(node) is state_inputs.PoissonInput
        assert isinstance(node, compat.original_state_poisson_input_class())
        assert isinstance(node, brainstate.nn.Module)


@needs_state
def test_ledger_refuses_the_state_defining_module_but_not_a_reexport_with_its_module_name():
    """``brainpy.state`` classes say ``__module__ = 'brainpy.state'``; the ledger still tells the
    re-exporting package from the module that defines them."""
    _, defining = _state_modules()
    name = f"{defining.__name__}.PoissonInput"
    problems = swap.apply_overrides({name: object()}, owner="t4")
    assert "defines it" in problems[name]
    assert vars(defining)["PoissonInput"].__module__ == "brainpy.state"  # why __module__ alone would not do
    assert swap.revert_overrides("t4") == []
