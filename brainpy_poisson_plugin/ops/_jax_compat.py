"""The few JAX APIs whose home moved between the supported jax releases (0.4.38 .. 0.12).

Everything version-dependent about JAX is resolved here, once, so the rest of the
package imports plain names from this module:

- ``jax_ffi``: ``jax.ffi`` (``jax.extend.ffi`` on jax 0.4.38);
- ``Primitive``: ``jax.extend.core.Primitive`` (``jax.core.Primitive`` before 0.4.36);
- ``Tracer``: the class of every traced value;
- ``threefry_2x32``: ``jax.extend.random.threefry_2x32``, the per-element RNG.
"""

from __future__ import annotations

import jax

try:  # jax >= 0.4.39
    from jax import ffi as jax_ffi
except ImportError:  # pragma: no cover - jax 0.4.38
    from jax.extend import ffi as jax_ffi  # type: ignore[no-redef]

try:  # jax >= 0.4.36
    from jax.extend.core import Primitive
except ImportError:  # pragma: no cover
    from jax.core import Primitive  # type: ignore[no-redef,attr-defined]

from jax.core import Tracer
from jax.extend.random import threefry_2x32

__all__ = ["jax_ffi", "threefry_2x32", "Primitive", "Tracer", "jax"]
