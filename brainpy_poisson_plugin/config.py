"""Process-wide choice of the sampler implementation used when ``impl="auto"``.

``"auto"`` means: the fused custom call where its native library is loaded for the
platform, else the pure-JAX reference. The default can be overridden for a whole
process (``set_default_impl``), for a block of code (``using_impl``) or by the
``BRAINPY_POISSON_IMPL`` environment variable; the pytest plugin uses this to run a
user's test session under one implementation.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

#: Implementations a caller may ask for. ``"host"`` only exists for ``PoissonInput``
#: (it delegates to BrainPy's own class); ``poisson_add`` accepts the first three.
IMPLEMENTATIONS = ("auto", "fused", "reference", "host")

_default: str | None = None


def _check(impl: object, allowed: tuple[str, ...] = IMPLEMENTATIONS) -> str:
    if not isinstance(impl, str) or impl not in allowed:
        raise ValueError(f"impl must be one of {allowed}, got impl={impl!r}")
    return impl


def default_impl() -> str:
    """Return the implementation that ``impl="auto"`` currently resolves through.

    Returns ``"auto"`` unless overridden by :func:`set_default_impl`,
    :func:`using_impl` or the ``BRAINPY_POISSON_IMPL`` environment variable
    (checked in that order).
    """
    if _default is not None:
        return _default
    env = os.environ.get("BRAINPY_POISSON_IMPL")
    if env:
        return _check(env.strip().lower())
    return "auto"


def set_default_impl(impl: str | None) -> None:
    """Set the process-wide implementation for ``impl="auto"``; ``None`` clears it.

    Raises ``ValueError`` naming ``impl`` when it is not one of
    :data:`IMPLEMENTATIONS`.
    """
    global _default
    _default = None if impl is None else _check(impl)


@contextlib.contextmanager
def using_impl(impl: str) -> Iterator[str]:
    """Context manager: ``impl="auto"`` resolves to ``impl`` inside the block.

    The previous setting is restored on exit, also when the block raises.
    """
    global _default
    new = _check(impl)
    previous = _default
    _default = new
    try:
        yield new
    finally:
        _default = previous
