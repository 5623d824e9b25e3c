"""Pure sampling math: exact binomial tables and the pure-JAX reference sampler.

Nothing in this subpackage imports BrainPy; ``tables`` does not even import JAX.
"""
