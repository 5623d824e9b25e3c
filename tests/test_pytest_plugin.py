"""The pytest plugin (``pytest11`` entry point ``brainpy_poisson``), through ``pytester``."""

from __future__ import annotations

import importlib.metadata as md

import pytest

from brainpy_poisson_plugin import config

pytest_plugins = ["pytester"]

_INSTALLED = any(ep.value == "brainpy_poisson_plugin.pytest_plugin" for ep in md.entry_points(group="pytest11"))
# When the package is installed the entry point loads the plugin; otherwise load it by name.
PLUGIN_ARGS = () if _INSTALLED else ("-p", "brainpy_poisson_plugin.pytest_plugin")

USER_TEST = """
from brainpy_poisson_plugin import config

def test_impl(brainpy_poisson_impl):
    assert brainpy_poisson_impl == {expected!r}
    assert config.default_impl() == {expected!r}
"""


def test_entry_point_is_declared():
    assert _INSTALLED, "pytest11 entry point brainpy_poisson not found: is the package installed?"


@pytest.mark.parametrize("impl", ["fused", "reference", "host"])
def test_option_sets_the_default_for_the_session_and_restores_it(pytester, impl):
    before = config.default_impl()
    pytester.makepyfile(USER_TEST.format(expected=impl))
    result = pytester.runpytest(*PLUGIN_ARGS, f"--brainpy-poisson={impl}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"brainpy-poisson: impl={impl} (from --brainpy-poisson)"])
    assert config.default_impl() == before  # restored at the end of the (inner) session


def test_without_option_impl_is_auto(pytester, monkeypatch):
    monkeypatch.delenv("BRAINPY_POISSON_IMPL", raising=False)
    pytester.makepyfile(USER_TEST.format(expected="auto"))
    result = pytester.runpytest(*PLUGIN_ARGS)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["brainpy-poisson: impl=auto resolves to 'auto'*"])


def test_ini_option(pytester):
    pytester.makeini("[pytest]\nbrainpy_poisson = reference\n")
    pytester.makepyfile(USER_TEST.format(expected="reference"))
    result = pytester.runpytest(*PLUGIN_ARGS)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["brainpy-poisson: impl=reference (from ini brainpy_poisson)"])


def test_command_line_beats_ini(pytester):
    pytester.makeini("[pytest]\nbrainpy_poisson = reference\n")
    pytester.makepyfile(USER_TEST.format(expected="host"))
    result = pytester.runpytest(*PLUGIN_ARGS, "--brainpy-poisson=host")
    result.assert_outcomes(passed=1)


def test_bad_values_are_usage_errors(pytester):
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest(*PLUGIN_ARGS, "--brainpy-poisson=fast")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--brainpy-poisson*invalid choice*fast*"])

    pytester.makeini("[pytest]\nbrainpy_poisson = turbo\n")
    result = pytester.runpytest(*PLUGIN_ARGS)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*brainpy_poisson must be one of*turbo*"])


def test_session_choice_reaches_poisson_input(pytester):
    """A user's model test sees the chosen implementation through impl='auto'."""
    pytest.importorskip("brainpy")
    pytester.makepyfile(
        """
        import brainpy as bp
        import brainpy.math as bm
        from brainpy_poisson_plugin import PoissonInput, config

        def test_model(brainpy_poisson_impl):
            assert brainpy_poisson_impl == "reference"
            var = bm.Variable(bm.zeros(16))
            node = PoissonInput(var, 100, 50.0, 1.0)
            assert config.default_impl() == "reference"
            bp.share.save(t=0.0, i=0, dt=0.1)
            node.update()
            assert float(var.value.sum()) >= 0.0
        """
    )
    result = pytester.runpytest(*PLUGIN_ARGS, "--brainpy-poisson=reference")
    result.assert_outcomes(passed=1)


def test_bad_impl_variable_is_a_usage_error_naming_it(pytester, monkeypatch):
    monkeypatch.setenv("BRAINPY_POISSON_IMPL", "garbage")
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest(*PLUGIN_ARGS)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*BRAINPY_POISSON_IMPL='garbage'*not allowed*"])
    assert "Traceback" not in result.stderr.str()
    # An explicit --brainpy-poisson takes precedence over the variable.
    pytester.makepyfile(USER_TEST.format(expected="reference"))
    result = pytester.runpytest(*PLUGIN_ARGS, "--brainpy-poisson=reference")
    result.assert_outcomes(passed=1)
