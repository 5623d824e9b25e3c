"""Every import order ends with the swap active, and swap.status() agrees with itself
(issue 12 item 1). Each order runs in a fresh interpreter, where the installed ``.pth`` hook
is the only thing that can trigger the plugin loader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("brainpy")

from brainpy_poisson_plugin.plugin import autoload

PTH_INSTALLED = autoload.started_by == "pth"

PROBE = """
    import json, warnings
    warnings.simplefilter("always")
    with warnings.catch_warnings(record=True) as caught:
{first}
        import brainpy as bp
        import brainpy_poisson_plugin
        from brainpy_poisson_plugin.plugin import swap
        st = swap.status()
    print(json.dumps(dict(
        swapped=bp.dyn.PoissonInput is brainpy_poisson_plugin.PoissonInput,
        active=st.active, reason=st.reason, targets=st.targets,
        plugin_warnings=[str(w.message) for w in caught if "plugin" in w.category.__name__.lower()],
    )))
"""

ORDERS = {
    "brainpy": "",
    "plugin class, then brainpy": "from brainpy_poisson_plugin import PoissonInput",
    "plugin module, then brainpy": "import brainpy_poisson_plugin.host.poisson_input",
    "poisson_add, then brainpy": "from brainpy_poisson_plugin import poisson_add",
    "brainpy.math first": "import brainpy.math",
    "ops first": "import brainpy_poisson_plugin.ops",
    "swap module first": "from brainpy_poisson_plugin.plugin import swap",
    "brainpy.state first": "import brainpy.state",
}


def _needs(order: str) -> None:
    if order == "brainpy.state first":
        import importlib.util

        if importlib.util.find_spec("brainpy.state") is None:
            pytest.skip("this BrainPy has no brainpy.state (bundled from 2.9)")


@pytest.mark.slow
@pytest.mark.skipif(not PTH_INSTALLED, reason="the autoload .pth hook is not installed in this environment")
@pytest.mark.parametrize("order", list(ORDERS))
def test_every_import_order_ends_with_the_swap_active(order):
    _needs(order)
    first = textwrap.indent(ORDERS[order], " " * 8) if ORDERS[order] else "        pass"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRAINPY_")}
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PROBE.format(first=first))],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["plugin_warnings"] == []
    assert out["swapped"] is True, out
    assert out["active"] is True and out["reason"].startswith("active: "), out
    assert set(out["targets"].values()) == {"plugin"}, out


def test_status_never_says_active_while_the_swap_is_not_in_place(monkeypatch):
    """An allowed swap whose names were rebound afterwards is reported as not active."""
    import brainpy as bp

    from brainpy_poisson_plugin.host.compat import original_poisson_input_class
    from brainpy_poisson_plugin.plugin import swap, swap_status

    with swap.swapped(force=True):
        monkeypatch.setattr(swap_status, "_last_reason", "active: brainpy is in the supported range")
        monkeypatch.setattr(bp.dyn, "PoissonInput", original_poisson_input_class())
        st = swap.status()
        assert st.active is False
        assert not st.reason.startswith("active"), st.reason
        assert "brainpy.dyn.PoissonInput is host" in st.reason


def test_hook_does_not_record_active_when_the_class_cannot_be_imported(monkeypatch):
    from brainpy_poisson_plugin.plugin import hooks, swap, swap_status

    def broken():
        raise ImportError("cannot import name 'PoissonInput' from partially initialized module")

    monkeypatch.setattr(swap_status, "_last_reason", swap_status._last_reason)
    monkeypatch.setattr(swap_status, "_last_decision", swap_status._last_decision)
    monkeypatch.setattr(swap, "overrides", broken)
    with pytest.raises(ImportError, match="partially initialized"):
        hooks.brainpy_component_overrides(host_version="2.9.0")
    reason = swap_status.last_reason()
    assert reason.startswith("not active: the plugin's class could not be imported"), reason
