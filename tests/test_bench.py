"""``brainpy-poisson bench``: runs end to end and writes well-formed outputs.

No timing assertions: these only check that the command runs and what it writes.
"""

from __future__ import annotations

import json

import pytest

from brainpy_poisson_plugin.bench import main, report, timing
from brainpy_poisson_plugin.bench.workloads import WORKLOADS, get_workloads


def test_summarize_and_measure_are_pure():
    s = timing.summarize([3.0, 1.0, 2.0, 4.0])
    assert s["median"] == 2.5 and s["min"] == 1.0 and s["max"] == 4.0 and s["iqr"] >= 0
    ticks = iter([0.0, 5.0, 5.0, 6.0, 6.0, 7.0])  # first call 5 s, then two 1 s runs
    m = timing.measure(lambda: None, steps=10, elements=100, repeats=2, clock=lambda: next(ticks))
    assert m.runs_s == (1.0, 1.0)
    assert m.compile_s == pytest.approx(4.0)
    assert m.ns_per_element_step() == [pytest.approx(1e6)] * 2


def test_workloads_match_the_design():
    assert WORKLOADS["W1"].elements == 100_000 and WORKLOADS["W1"].mean_count == pytest.approx(1.0)
    assert WORKLOADS["W2"].mean_count == pytest.approx(20.0)
    assert WORKLOADS["W3"].mean_count == pytest.approx(0.05)
    assert WORKLOADS["W4"].shape == (64, 10_000) and WORKLOADS["W4"].batching
    assert WORKLOADS["W5"].elements == 10**7
    assert get_workloads(["w5"], platform="gpu")[0].elements == 10**8
    with pytest.raises(ValueError, match="W9"):
        get_workloads(["W9"])


def test_ratios_against_host_and_rng_floor():
    rows = [
        {"workload": "W1", "platform": "cpu", "impl": i, "status": "ok", "ns_per_neuron_step": {"median": m}}
        for i, m in (("host", 40.0), ("fused", 4.0), ("rng-floor", 2.0))
    ]
    report.add_ratios(rows)
    fused = rows[1]
    assert fused["speedup_vs_host"] == pytest.approx(10.0)
    assert fused["ratio_to_rng_floor"] == pytest.approx(2.0)


@pytest.mark.parametrize("workloads", ["W1", "W4"])
def test_quick_run_writes_json_and_png(tmp_path, capsys, workloads):
    rc = main(
        [
            "--quick",
            "--workloads",
            workloads,
            "--impls",
            "host,reference,fused,mem-floor,rng-floor",
            "--platforms",
            "cpu",
            "--steps",
            "2",
            "--repeats",
            "2",
            "--no-progress",
            "--out",
            str(tmp_path),
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "ns/neuron/step" in printed and workloads in printed

    doc = json.loads((tmp_path / "bench-quick.json").read_text())
    assert doc["schema"] == report.SCHEMA
    assert doc["quick"] is True
    machine = doc["machine"]
    for key in ("cpu_model", "cpu_cores", "platform", "python", "versions"):
        assert key in machine
    for dist in ("brainpy", "jax", "jaxlib"):
        assert machine["versions"][dist]
    rows = doc["results"]
    assert {r["impl"] for r in rows} == {"host", "reference", "fused", "mem-floor", "rng-floor"}
    for r in rows:
        assert r["workload"] == workloads and r["platform"] == "cpu"
        assert r["status"] in ("ok", "unavailable"), r
        if r["impl"] != "fused":  # the fused kernel may not be built here
            assert r["status"] == "ok", r
        if r["status"] == "ok":
            stats = r["ns_per_neuron_step"]
            assert set(stats) >= {"median", "min", "max", "iqr"}
            assert stats["min"] <= stats["median"] <= stats["max"]
            assert len(r["runs_s"]) == 2 and r["compile_s"] >= 0
            assert r["speedup_vs_host"] > 0 and r["ratio_to_rng_floor"] > 0
        else:
            assert r["reason"]
    assert (tmp_path / "bench-quick.png").stat().st_size > 0
    assert (tmp_path / "bench-quick.md").read_text().startswith("| workload")


def test_bad_arguments_return_2(tmp_path):
    assert main(["--quick", "--impls", "nope", "--out", str(tmp_path)]) == 2
    assert main(["--quick", "--workloads", "W9", "--out", str(tmp_path)]) == 2
    assert main(["--quick", "--platforms", "tpu", "--out", str(tmp_path)]) == 2


def test_time_varying_workloads_and_their_baselines():
    w6, w7 = WORKLOADS["W6"], WORKLOADS["W7"]
    assert w6.rate == "modulated" and w6.elements == 100_000 and w6.baseline == "W6-CONST"
    assert WORKLOADS["W6-CONST"].rate == "constant" and WORKLOADS["W6-CONST"].shape == w6.shape
    assert w7.rate == "sweep" and w7.shape == (16, 10_000) and w7.baseline == "W7-CALLS"
    rates = w7.sweep_rates()
    assert len(rates) == 16 and rates[0] == 1.0 and rates[-1] == 40.0
    assert WORKLOADS["W7-CALLS"].sweep_rates() == rates


def test_quick_w6_w7_run_reports_ratio_to_constant_rate(tmp_path, capsys):
    rc = main(
        [
            "--quick",
            "--workloads",
            "W6,W6-CONST,W7,W7-CALLS",
            "--impls",
            "host,fused",
            "--platforms",
            "cpu",
            "--steps",
            "2",
            "--repeats",
            "1",
            "--no-progress",
            "--out",
            str(tmp_path),
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "W6 / W6-CONST (cpu)" in printed and "W7 / W7-CALLS (cpu)" in printed
    doc = json.loads((tmp_path / "bench-quick.json").read_text())
    rows = {(r["workload"], r["impl"]): r for r in doc["results"]}
    for wl in ("W6", "W7"):
        for impl in ("host", "fused"):
            assert rows[(wl, impl)]["status"] == "ok"
            assert rows[(wl, impl)]["ratio_to_baseline"] > 0
    assert rows[("W6-CONST", "fused")]["ratio_to_baseline"] is None
