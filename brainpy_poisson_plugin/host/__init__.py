"""The BrainPy-facing side: the drop-in ``PoissonInput`` and what it needs from the host.

BrainPy is imported here, before any module of this sub-package starts executing. When
the plugin is imported first (``from brainpy_poisson_plugin import PoissonInput``, then
``import brainpy``), BrainPy's import therefore completes - and the plugin loader swaps
``bp.dyn.PoissonInput`` - while no plugin class is half-defined; otherwise the loader would
find ``host.poisson_input`` partially initialised and skip the swap.
"""

import importlib as _importlib

_importlib.import_module("brainpy")  # before any submodule: see the docstring
