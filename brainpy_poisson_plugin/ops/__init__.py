"""The JAX side of the sampler: the primitive, its lowering to the fused custom call or
the reference, the native-library loader, and the functional ``poisson_add``."""
