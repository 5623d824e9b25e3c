"""``brainpy-poisson doctor`` in this process: one probe per section, never a crash, and the
"what does auto pick" answer asked from the code that decides (the installed-wheel doctor
checks are in test_autoload_install.py)."""

from __future__ import annotations

import json

import pytest

from brainpy_poisson_plugin import cli, config, switches

pytest.importorskip("brainpy")


@pytest.fixture(autouse=True)
def _clean_switches(monkeypatch):
    for name in switches.SWITCHES:
        monkeypatch.delenv(name, raising=False)
    switches._reset_for_tests()


def test_each_section_comes_from_one_probe():
    report = cli.collect_doctor_report()
    sections = {"python", "versions", "switches", "autoload", "plugins", "swap", "native", "impl", "devices"}
    assert sections <= set(report)
    assert [p.__name__ for p in cli.PROBES] == [
        "probe_python",
        "probe_switches",
        "probe_autoload",
        "probe_plugins",
        "probe_swap",
        "probe_native",
        "probe_impl",
    ]
    json.dumps(report)  # JSON-ready as it is
    text = cli.format_doctor_report(report)
    for name in switches.SWITCHES:  # every switch is shown, with its parsed value
        assert name in text
    assert report["switches"]["BRAINPY_POISSON_NUM_THREADS"]["shown"] == "no cap"


def test_a_failing_probe_is_a_problem_not_a_crash():
    def probe_broken(report, found):
        raise KeyError("boom")

    report = cli.collect_doctor_report((cli.probe_python, probe_broken, cli.probe_switches))
    assert report["ok"] is False
    assert report["problems"] == ["doctor: probe_broken failed: KeyError: 'boom'"]
    assert "switches" in report  # the probes after it still ran
    assert "status: BROKEN" in cli.format_doctor_report(report)


def test_auto_pick_is_the_lowerings_decision(monkeypatch):
    from brainpy_poisson_plugin.ops import lowering

    asked = []

    def uses_fused(platform, impl, dtype):
        asked.append((platform, impl, str(dtype)))
        return platform == "cuda"  # the opposite of what a CPU-only machine would say

    monkeypatch.setattr(lowering, "uses_fused", uses_fused)
    report = cli.collect_doctor_report((cli.probe_impl,))
    picks = {plat: entry["auto_picks"] for plat, entry in report["impl"]["platforms"].items()}
    assert picks == {"cpu": "reference", "cuda": "fused"}
    assert ("cpu", "auto", "float32") in asked


def test_auto_pick_follows_the_process_default(monkeypatch):
    from brainpy_poisson_plugin.ops import lowering

    monkeypatch.setattr(lowering, "uses_fused", lambda platform, impl, dtype: impl != "reference")
    with config.using_impl("reference"):
        report = cli.collect_doctor_report((cli.probe_impl,))
    assert report["impl"]["default"] == "reference"
    assert {e["auto_picks"] for e in report["impl"]["platforms"].values()} == {"reference"}
    assert any("overridden to 'reference'" in n for n in report["notes"])


def test_bad_impl_variable_is_reported_by_name(monkeypatch):
    monkeypatch.setenv("BRAINPY_POISSON_IMPL", "garbage")
    report = cli.collect_doctor_report((cli.probe_switches, cli.probe_impl))
    assert report["impl"]["default"] == "invalid"
    assert report["ok"] is False
    assert any("BRAINPY_POISSON_IMPL='garbage'" in p for p in report["problems"])
    assert "Traceback" not in cli.format_doctor_report(report)
