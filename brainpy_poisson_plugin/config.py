"""Process-wide choice of the sampler implementation used when ``impl="auto"``.

``"auto"`` means: the fused custom call where its native library is loaded for the
platform, else the pure-JAX reference. The default can be overridden for a whole
process (``set_default_impl``), for a block of code (``using_impl``) or by the
``BRAINPY_POISSON_IMPL`` environment variable; the pytest plugin uses this to run a
user's test session under one implementation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from . import switches
from .checks import IMPLEMENTATIONS, check_impl

__all__ = ["IMPLEMENTATIONS", "default_impl", "set_default_impl", "using_impl"]

_default: str | None = None


def default_impl() -> str:
    """Return the implementation that ``impl="auto"`` currently resolves through.

    Returns ``"auto"`` unless overridden by :func:`set_default_impl`,
    :func:`using_impl` or the ``BRAINPY_POISSON_IMPL`` environment variable
    (checked in that order; the variable is case-insensitive).

    Raises :class:`~brainpy_poisson_plugin.switches.SwitchValueError` (a ``ValueError``)
    naming ``BRAINPY_POISSON_IMPL`` and its value when the variable holds anything but
    one of :data:`IMPLEMENTATIONS` and no in-process setting takes precedence. It is an
    error rather than a warning because the implementation decides which numbers a
    simulation produces (``host`` draws another random stream): a typo must not
    silently give results the user did not ask for.
    """
    if _default is not None:
        return _default
    return str(switches.get(switches.IMPL))


def set_default_impl(impl: str | None) -> None:
    """Set the process-wide implementation for ``impl="auto"``; ``None`` clears it.

    Raises ``ValueError`` naming ``impl`` when it is not one of
    :data:`IMPLEMENTATIONS`.
    """
    global _default
    _default = None if impl is None else check_impl(impl)


@contextlib.contextmanager
def using_impl(impl: str) -> Iterator[str]:
    """Context manager: ``impl="auto"`` resolves to ``impl`` inside the block.

    The previous setting is restored on exit, also when the block raises.
    """
    global _default
    new = check_impl(impl)
    previous = _default
    _default = new
    try:
        yield new
    finally:
        _default = previous
