"""pytest plugin (entry point ``pytest11``): run a test session under one implementation.

``pytest --brainpy-poisson=fused|reference|host`` (or the ini option
``brainpy_poisson = ...``) makes ``impl="auto"`` resolve to that implementation for the
whole session, exactly as :func:`brainpy_poisson_plugin.using_impl` does (see
:func:`brainpy_poisson_plugin.config.default_impl` for what follows it), and restores the
previous process default at the end. Without the option, ``BRAINPY_POISSON_IMPL`` is in
force; a value it does not allow is a usage error naming the variable. The session
fixture ``brainpy_poisson_impl`` returns the implementation in force (``"auto"`` when none
was chosen). The report header says which.

This module is imported by every pytest run in an environment where the package is
installed, so it imports nothing but :mod:`brainpy_poisson_plugin.config` (no BrainPy,
no JAX).
"""

from __future__ import annotations

import pytest

from brainpy_poisson_plugin import config as _config
from brainpy_poisson_plugin.checks import IMPLEMENTATIONS

#: What ``--brainpy-poisson`` accepts: every implementation but ``"auto"`` (the default).
CHOICES = tuple(impl for impl in IMPLEMENTATIONS if impl != "auto")
_STASH_KEY = pytest.StashKey[tuple]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--brainpy-poisson=fused|reference|host`` and the ``brainpy_poisson`` ini option."""
    group = parser.getgroup("brainpy-poisson", "brainpy-poisson-plugin")
    group.addoption(
        "--brainpy-poisson",
        dest="brainpy_poisson",
        default=None,
        choices=CHOICES,
        help="run the session with impl='auto' resolving to this PoissonInput implementation "
        "(fused: the XLA custom call, reference: pure JAX, host: BrainPy's own class).",
    )
    parser.addini(
        "brainpy_poisson",
        help="default for --brainpy-poisson (fused, reference or host)",
        default="",
    )


def _choice(config: pytest.Config) -> tuple[str | None, str]:
    value = config.getoption("brainpy_poisson")
    if value:
        return value, "--brainpy-poisson"
    ini = str(config.getini("brainpy_poisson") or "").strip()
    if ini:
        if ini not in CHOICES:
            raise pytest.UsageError(f"ini option brainpy_poisson must be one of {CHOICES}, got {ini!r}")
        return ini, "ini brainpy_poisson"
    return None, ""


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Apply the chosen implementation for the session (``config.using_impl``).

    Raises ``pytest.UsageError`` when no option is given and ``BRAINPY_POISSON_IMPL`` holds
    a value it does not allow.
    """
    impl, source = _choice(config)
    cm = None
    if impl is not None:
        cm = _config.using_impl(impl)
        cm.__enter__()
    else:
        try:
            _config.default_impl()  # BRAINPY_POISSON_IMPL is in force: check it now
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None
    config.stash[_STASH_KEY] = (impl, source, cm)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Restore the implementation that was set before the session."""
    impl, _source, cm = config.stash.get(_STASH_KEY, (None, "", None))
    if cm is not None:
        cm.__exit__(None, None, None)
        config.stash[_STASH_KEY] = (impl, _source, None)


def pytest_report_header(config: pytest.Config) -> str:
    """One header line saying which implementation ``impl="auto"`` resolves to."""
    impl, source, _cm = config.stash.get(_STASH_KEY, (None, "", None))
    if impl is None:
        return f"brainpy-poisson: impl=auto resolves to {_config.default_impl()!r} (no --brainpy-poisson)"
    return f"brainpy-poisson: impl={impl} (from {source})"


@pytest.fixture(scope="session")
def brainpy_poisson_impl(pytestconfig: pytest.Config) -> str:
    """The implementation ``impl="auto"`` resolves to in this session.

    ``"fused"``, ``"reference"`` or ``"host"`` when chosen with ``--brainpy-poisson`` (or the
    ini option), else the process default (usually ``"auto"``).
    """
    impl, _source, _cm = pytestconfig.stash.get(_STASH_KEY, (None, "", None))
    return impl if impl is not None else _config.default_impl()
