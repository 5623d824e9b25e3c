"""``brainpy-poisson bench``: steady-state timings of the Poisson-input implementations.

Modules, one job each: :mod:`.workloads` (the W1-W5 table), :mod:`.timing` (pure timing
and machine information), :mod:`.steppers` (BrainPy step builders per implementation),
:mod:`.report` (table, JSON, chart) and :mod:`.runner` (the command line).

Importing this package is cheap: JAX and BrainPy are imported when a benchmark runs.
"""

from __future__ import annotations

from .runner import add_arguments, main, run

__all__ = ["add_arguments", "run", "main"]
