"""The BrainPy-facing side: the drop-in ``PoissonInput`` and what it needs from the host."""
