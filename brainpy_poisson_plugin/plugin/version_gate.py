"""Which BrainPy versions the swap is tested on, and the ``BRAINPY_POISSON_PLUGIN`` switch.

``SUPPORTED_BRAINPY`` must match the ``brainpy`` pin in ``pyproject.toml`` (a test checks
that). Outside the range the swap does not happen and one
:class:`~brainpy_poisson_plugin.plugin.HostVersionWarning` names the version found and the
supported range.

Environment variables (parsed by :mod:`brainpy_poisson_plugin.switches`, which documents
the values):

``BRAINPY_POISSON_PLUGIN``
    ``auto`` (default; also any on word): swap when the host version is in range; any off
    word (``0``/``off``/``false``/``no``): never swap automatically; ``force``: swap even
    outside the tested range.
``BRAINPY_POISSON_FAKE_HOST_VERSION``
    For tests: pretend this BrainPy version is installed (only the gate and the hooks
    see it; BrainPy itself is unchanged).
"""

from __future__ import annotations

import dataclasses
import sys

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from .. import switches
from ._warnings import HostVersionWarning, warn_once

#: BrainPy versions the plugin is tested on; keep equal to the pin in pyproject.toml.
SUPPORTED_BRAINPY_TEXT = ">=2.6,<2.10"
SUPPORTED_BRAINPY = SpecifierSet(SUPPORTED_BRAINPY_TEXT)

ENV_SWITCH = switches.PLUGIN.name
ENV_FAKE_VERSION = switches.FAKE_HOST_VERSION.name


@dataclasses.dataclass(frozen=True)
class GateDecision:
    """The outcome of :func:`decide`.

    Attributes:
        allowed: whether the swap may happen.
        reason: one human-readable sentence saying why (for ``doctor`` and ``status()``).
        host_version: the BrainPy version checked (``None`` when it could not be found).
        switch: the normalised ``BRAINPY_POISSON_PLUGIN`` value: ``"auto"``, ``"off"`` or
            ``"force"``.
        in_range: whether ``host_version`` is in :data:`SUPPORTED_BRAINPY` (``None`` when
            unknown).
        deliberate: ``True`` when the swap is off because the user asked for it (so
            ``doctor`` does not call it broken).
    """

    allowed: bool
    reason: str
    host_version: str | None
    switch: str
    in_range: bool | None
    deliberate: bool = False


def switch() -> str:
    """Return the parsed ``BRAINPY_POISSON_PLUGIN`` value: ``auto``, ``off`` or ``force``.

    An unknown value warns once (naming the variable) and reads as ``auto``.
    """
    return str(switches.get(switches.PLUGIN))


def found_host_version() -> str | None:
    """The BrainPy version to check: the fake one if set, else the installed one."""
    fake = switches.get(switches.FAKE_HOST_VERSION)
    if fake is not None:
        return str(fake)
    mod = sys.modules.get("brainpy")
    version = getattr(mod, "__version__", None) if mod is not None else None
    if isinstance(version, str) and version:
        return version
    try:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as dist_version

        return dist_version("brainpy")
    except PackageNotFoundError:
        return None


def in_supported_range(version: str | None) -> bool | None:
    """Whether ``version`` is in :data:`SUPPORTED_BRAINPY`; ``None`` if it is not a version.

    Pre-releases inside the range count as in range (``2.8.3rc1``); PEP 440 keeps
    pre-releases of the upper bound (``2.9.0rc1``) out.
    """
    if version is None:
        return None
    try:
        parsed = Version(version)
    except InvalidVersion:
        return None
    return SUPPORTED_BRAINPY.contains(parsed, prereleases=True)


def decide(host_version: str | None = None, *, warn: bool = True) -> GateDecision:
    """Decide whether the automatic swap may happen for ``host_version``.

    ``host_version`` defaults to :func:`found_host_version`. With ``warn=True`` an
    out-of-range version emits one :class:`HostVersionWarning` per process.
    """
    sw = switch()
    version = found_host_version() if host_version is None else host_version
    ok = in_supported_range(version)
    supported = SUPPORTED_BRAINPY_TEXT
    if sw == "off":
        raw = (switches.raw(switches.PLUGIN) or "").strip()
        return GateDecision(False, f"disabled by {ENV_SWITCH}={raw}", version, sw, ok, deliberate=True)
    if ok:
        return GateDecision(True, f"brainpy {version} is in the supported range {supported}", version, sw, ok)
    found = (
        "no brainpy version found"
        if version is None
        else (f"brainpy {version}" if ok is not None else f"unparsable brainpy version {version!r}")
    )
    if sw == "force":
        return GateDecision(
            True,
            f"{found} is outside the supported range {supported}; swapped anyway because {ENV_SWITCH}=force",
            version,
            sw,
            ok,
        )
    message = (
        f"brainpy-poisson-plugin: found {found}, but the supported range is brainpy{supported}; "
        f"bp.dyn.PoissonInput is NOT replaced (set {ENV_SWITCH}=force to replace it anyway)"
    )
    if warn:
        warn_once(f"range:{version}", message, HostVersionWarning)
    return GateDecision(False, f"{found} is outside the supported range {supported}", version, sw, ok)


def _reset_for_tests() -> None:
    """Forget which warnings were already emitted (tests only)."""
    from . import _warnings

    _warnings._reset_for_tests()
    switches._reset_for_tests()
