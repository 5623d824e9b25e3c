"""The swap and the version gate, in this process (the installed-wheel versions of these
checks are in test_autoload_install.py)."""

from __future__ import annotations

import tomllib
import warnings
from pathlib import Path

import pytest
from packaging.requirements import Requirement

bp = pytest.importorskip("brainpy")

from brainpy_poisson_plugin.host.compat import original_poisson_input_class  # noqa: E402
from brainpy_poisson_plugin.plugin import HostVersionWarning, swap, version_gate  # noqa: E402

HOST = original_poisson_input_class()
HOST_HAD_SYNAPSES_NAME = "PoissonInput" in vars(bp.synapses) and vars(bp.synapses)["PoissonInput"] is HOST


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
    from brainpy.dyn.projections import inputs

    assert inputs.PoissonInput is HOST
    assert issubclass(cls, HOST)
    assert swap.is_active()
    st = swap.status()
    assert st.active and set(st.targets.values()) == {"plugin"}


def test_deactivate_restores_exactly():
    swap.deactivate()
    before = {m: dict(vars(m)) for m in (bp.dyn, bp.dyn.projections, bp.synapses)}
    swap.activate()
    swap.activate()  # idempotent: the original objects are still what gets restored
    restored = swap.deactivate()
    assert "brainpy.dyn.PoissonInput" in restored
    for mod, snapshot in before.items():
        now = dict(vars(mod))
        assert now.keys() == snapshot.keys(), mod.__name__
        assert all(now[k] is snapshot[k] for k in snapshot), mod.__name__
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
    with pytest.warns(HostVersionWarning, match=r"3\.0\.0.*>=2\.6,<2\.9"):
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
    [("2.6.0", True), ("2.6.1", True), ("2.8.2", True), ("2.8.3rc1", True), ("2.9.0", False), ("2.9.0rc1", False),
     ("2.5.9", False), ("3.0", False), ("not-a-version", False)],
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
    problems = swap.apply_overrides(
        {"brainpy.dyn.projections.inputs.PoissonInput": object(), "numpy.zeros": object(), "brainpy.nope.X": 1},
        owner="t1",
    )
    assert "defines it" in problems["brainpy.dyn.projections.inputs.PoissonInput"]
    assert "under 'brainpy.'" in problems["numpy.zeros"]
    assert "not importable" in problems["brainpy.nope.X"]
    assert swap.revert_overrides("t1") == [name]
    assert not hasattr(bp.dyn, "_bpp_test_attribute")
