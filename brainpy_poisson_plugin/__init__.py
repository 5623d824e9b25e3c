"""brainpy-poisson-plugin: exact, fused, reproducible Poisson background input for BrainPy.

Public API (imported lazily, so ``import brainpy_poisson_plugin`` is cheap and never
imports BrainPy or JAX by itself):

- :class:`PoissonInput` - drop-in for ``brainpy.dyn.PoissonInput``.
- :func:`poisson_add` - the functional core, ``target + weight * Binomial(num_input, p)``.
- :func:`shard_map_block`, :class:`Block` - a call's block inside ``shard_map``.
- :func:`binomial_table` - the exact sampling tables.
- :func:`activate`, :func:`deactivate`, :func:`swapped` - the swap of BrainPy's names.
- :func:`set_default_impl`, :func:`using_impl` - choose the implementation for ``impl="auto"``.
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "PoissonInput": "brainpy_poisson_plugin.host.poisson_input",
    "poisson_add": "brainpy_poisson_plugin.ops.poisson_add",
    "shard_map_block": "brainpy_poisson_plugin.ops.blocks",
    "Block": "brainpy_poisson_plugin.ops.blocks",
    "binomial_table": "brainpy_poisson_plugin.sampling.tables",
    "BinomialTable": "brainpy_poisson_plugin.sampling.tables",
    "activate": "brainpy_poisson_plugin.plugin.swap",
    "deactivate": "brainpy_poisson_plugin.plugin.swap",
    "swapped": "brainpy_poisson_plugin.plugin.swap",
    "set_default_impl": "brainpy_poisson_plugin.config",
    "using_impl": "brainpy_poisson_plugin.config",
    "default_impl": "brainpy_poisson_plugin.config",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'brainpy_poisson_plugin' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
