"""This package's implementations of the ``brainpy`` hooks.

The module is named by the entry point ``poisson`` in the ``brainpy.plugins`` group
(``pyproject.toml``), so the loader registers it as a pluggy plugin. Importing it is
cheap; BrainPy/JAX are only imported inside the hooks.
"""

from __future__ import annotations

from typing import Any

from .hookspecs import HOOKSPEC_API_VERSION, PluginInfo, hookimpl

DIST_NAME = "brainpy-poisson-plugin"


def _version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version(DIST_NAME)
    except PackageNotFoundError:  # running from a source tree
        from brainpy_poisson_plugin import __version__

        return __version__


@hookimpl
def brainpy_plugin_info() -> PluginInfo:
    """This plugin's name, version and supported BrainPy range (see the hookspec)."""
    from .version_gate import SUPPORTED_BRAINPY_TEXT

    return PluginInfo(
        name=DIST_NAME,
        version=_version(),
        supported_host=SUPPORTED_BRAINPY_TEXT,
        api_version=HOOKSPEC_API_VERSION,
        description=(
            "exact fused PoissonInput (bp.dyn.PoissonInput, bp.synapses.PoissonInput, "
            "brainpy.state.PoissonInput / poisson_input)"
        ),
    )


@hookimpl
def brainpy_component_overrides(host_version: str) -> dict[str, Any]:
    """Replace ``PoissonInput`` where the version gate and ``BRAINPY_POISSON_PLUGIN`` allow.

    The reason recorded for ``status()`` says "active" only once the overrides exist; if
    the plugin's class cannot be imported, the reason says so and the error propagates
    (the loader reports it and skips this plugin).
    """
    from . import swap, version_gate

    decision = version_gate.decide(host_version)
    if not decision.allowed:
        swap.record_reason(decision.reason, decision)
        return {}
    try:
        overrides = swap.overrides()
    except Exception as exc:
        swap.record_reason(
            f"not active: the plugin's class could not be imported ({type(exc).__name__}: {exc})", decision
        )
        raise
    swap.record_reason(f"active: {decision.reason}", decision)
    return overrides
