"""The few JAX APIs whose home moved between the supported jax releases (0.4.38 .. 0.10).

Everything version-dependent about JAX is resolved here, once, so the rest of the
package imports plain names.
"""

from __future__ import annotations

import jax

try:  # jax >= 0.4.39
    from jax import ffi as jax_ffi
except ImportError:  # pragma: no cover - jax 0.4.38
    from jax.extend import ffi as jax_ffi  # type: ignore[no-redef]

from jax.extend.random import threefry_2x32

__all__ = ["jax_ffi", "threefry_2x32", "jax"]
