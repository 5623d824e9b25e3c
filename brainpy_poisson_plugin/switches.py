"""Every environment switch the plugin reads, in one place.

Each :class:`Switch` owns its name, its allowed values (with synonyms), its default, how a
raw string is parsed and the text the documentation shows. Everything that reads the
environment goes through :func:`get` (the parsed value) or :func:`describe` (raw text,
parsed value and what was wrong with it, for ``brainpy-poisson doctor``). The switch
table in ``docs/troubleshooting.md`` is :func:`markdown_table` (a test checks they agree).

Vocabulary, for every switch: values are case-insensitive and surrounding whitespace is
ignored; an unset or empty variable means the default. On/off switches accept
``1``/``on``/``true``/``yes`` and ``0``/``off``/``false``/``no``. A value that is not
allowed gives one :class:`~brainpy_poisson_plugin.plugin.SwitchValueWarning` naming the
variable and the value, and the default is used instead - except for
``BRAINPY_POISSON_IMPL``, which changes *which numbers* a simulation produces, so a bad
value there is a ``ValueError`` naming the variable (raised where the implementation is
resolved), never a silent fallback.

The one reader outside this module is the start-up hook :mod:`.plugin.autoload`, which
must not import the package: it keeps a copy of the on/off parse, and a test checks that
the copy agrees with :func:`parse_flag`.

This module imports only the standard library (``os``) and :mod:`.checks`; it never imports
BrainPy or JAX.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping

from .checks import IMPLEMENTATIONS

__all__ = [
    "TRUE_WORDS",
    "FALSE_WORDS",
    "Switch",
    "SwitchValueError",
    "SWITCHES",
    "PLUGIN",
    "IMPL",
    "NATIVE",
    "NUM_THREADS",
    "DISABLE_AUTOLOAD",
    "PLUGIN_DEBUG",
    "FAKE_HOST_VERSION",
    "parse_flag",
    "get",
    "raw",
    "describe",
    "markdown_table",
]

#: Words that switch an on/off switch on (compared after ``strip().lower()``).
TRUE_WORDS = ("1", "on", "true", "yes")
#: Words that switch an on/off switch off.
FALSE_WORDS = ("0", "off", "false", "no")


class SwitchValueError(ValueError):
    """An environment switch holds a value it does not allow (the message names both)."""


def parse_flag(text: str) -> bool | None:
    """``True``/``False`` for the on/off words (case-insensitive), ``None`` for anything else."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


@dataclasses.dataclass(frozen=True)
class Switch:
    """One environment variable: its name, what it accepts and what it does.

    Attributes:
        name: the environment variable.
        default: the parsed value used when the variable is unset, empty or invalid.
        values: ``{accepted word (lower case): parsed value}`` for switches with a fixed
            vocabulary; empty for free-form switches (``parse_text`` then decides).
        expected: how the allowed values read in a message (``"on or off"``).
        doc_rows: ``[(values, effect)]``: the rows of the documentation table.
        parse_text: for free-form switches: the parsed value of a stripped, non-empty
            text, or raise ``ValueError``.
        strict: an invalid value raises :class:`SwitchValueError` instead of warning and
            using the default.
        show: how the parsed value reads in ``doctor`` and the docs.
    """

    name: str
    default: object
    expected: str
    doc_rows: tuple[tuple[str, str], ...]
    values: Mapping[str, object] = dataclasses.field(default_factory=dict)
    parse_text: Callable[[str], object] | None = None
    strict: bool = False
    show: Callable[[object], str] = str

    def parse(self, text: str | None) -> object:
        """The parsed value of ``text`` (``None`` or blank: the default).

        Raises :class:`SwitchValueError` naming the variable and the value when ``text``
        is not allowed. Pure: no warning, no environment access.
        """
        if text is None or not text.strip():
            return self.default
        word = text.strip()
        if self.values:
            try:
                return self.values[word.lower()]
            except KeyError:
                pass
        elif self.parse_text is not None:
            try:
                return self.parse_text(word)
            except ValueError:
                pass
        else:
            return word
        raise SwitchValueError(f"{self.name}={text!r} is not allowed (expected {self.expected})")


def _flag_values(on: object, off: object) -> dict[str, object]:
    return {**dict.fromkeys(TRUE_WORDS, on), **dict.fromkeys(FALSE_WORDS, off)}


def _thread_count(text: str) -> int:
    # The native library reads the same variable with strtol; only plain non-negative
    # decimal integers mean the same thing to both readers.
    if not text.isascii() or not text.isdigit():
        raise ValueError(text)
    return int(text)


PLUGIN = Switch(
    name="BRAINPY_POISSON_PLUGIN",
    default="auto",
    # "disable"/"disabled" were accepted before the registry existed; kept so no setting changes meaning.
    values={"auto": "auto", "force": "force", "disable": "off", "disabled": "off", **_flag_values("auto", "off")},
    expected="auto, force, or an on/off word (1/on/true/yes, 0/off/false/no)",
    doc_rows=(
        ("unset / `auto` / `1` / `on`", "swap `bp.dyn.PoissonInput` when the BrainPy version is in the tested range"),
        ("`0` / `off`", "never swap automatically (explicit use still works)"),
        ("`force`", "swap even outside the tested range"),
    ),
)

IMPL = Switch(
    name="BRAINPY_POISSON_IMPL",
    default="auto",
    values={v: v for v in IMPLEMENTATIONS},
    expected="one of " + ", ".join(IMPLEMENTATIONS),
    strict=True,
    doc_rows=(
        (
            "`auto` (default), `fused`, `reference`, `host`",
            'what `impl="auto"` means in this process (`host`: `PoissonInput` only; `poisson_add` reads it '
            "as `auto`); `set_default_impl`, `using_impl` and `pytest --brainpy-poisson` take precedence; "
            "any other value is an error naming the variable",
        ),
    ),
)

NATIVE = Switch(
    name="BRAINPY_POISSON_NATIVE",
    default=True,
    values=_flag_values(True, False),
    expected="an on/off word (1/on/true/yes, 0/off/false/no)",
    show=lambda v: "on" if v else "off",
    doc_rows=(
        ("unset / `1` / `on`", "load the native kernels when they are built"),
        ("`0` / `off`", "do not load them (no warning): everything uses the pure-JAX reference (same results)"),
    ),
)

NUM_THREADS = Switch(
    name="BRAINPY_POISSON_NUM_THREADS",
    default=0,
    parse_text=_thread_count,
    expected="a non-negative integer",
    show=lambda v: "no cap" if v == 0 else f"at most {v}",
    doc_rows=(
        ("unset / `0`", "the CPU kernel spreads large targets over XLA's thread pool, without a cap"),
        ("`N` (a positive integer)", "at most `N` threads per CPU kernel call (read once per process)"),
    ),
)

DISABLE_AUTOLOAD = Switch(
    name="BRAINPY_DISABLE_PLUGIN_AUTOLOAD",
    default=False,
    values=_flag_values(True, False),
    expected="an on/off word (1/on/true/yes, 0/off/false/no)",
    show=lambda v: "on" if v else "off",
    doc_rows=(
        ("`1` / `on`", "do not run the plugin loader on `import brainpy` at all (no `brainpy.plugins` plugin loads)"),
    ),
)

PLUGIN_DEBUG = Switch(
    name="BRAINPY_PLUGIN_DEBUG",
    default=False,
    values=_flag_values(True, False),
    expected="an on/off word (1/on/true/yes, 0/off/false/no)",
    show=lambda v: "on" if v else "off",
    doc_rows=(("`1` / `on`", "a skipped plugin's warning includes the traceback"),),
)

FAKE_HOST_VERSION = Switch(
    name="BRAINPY_POISSON_FAKE_HOST_VERSION",
    default=None,
    expected="a version string",
    show=lambda v: "unset" if v is None else str(v),
    doc_rows=(("a version, e.g. `3.0.0`", "tests only: the version gate sees this BrainPy version"),),
)

#: Every switch, by name, in documentation order.
SWITCHES: dict[str, Switch] = {
    s.name: s for s in (PLUGIN, DISABLE_AUTOLOAD, NATIVE, NUM_THREADS, IMPL, PLUGIN_DEBUG, FAKE_HOST_VERSION)
}

_warned: set[tuple[str, str]] = set()


def raw(switch: Switch | str) -> str | None:
    """The variable's text as set in the environment (``None`` when unset)."""
    sw = _lookup(switch)
    return os.environ.get(sw.name)


def get(switch: Switch | str) -> object:
    """The parsed value of a switch, read from the environment now.

    An invalid value warns once per (variable, value) with a
    :class:`~brainpy_poisson_plugin.plugin.SwitchValueWarning` naming both, and gives the
    default; for a ``strict`` switch it raises :class:`SwitchValueError` instead. The
    warning never raises (under ``-W error`` it is written to stderr), so reading a switch
    behaves the same on every call.
    """
    sw = _lookup(switch)
    text = os.environ.get(sw.name)
    try:
        return sw.parse(text)
    except SwitchValueError as exc:
        if sw.strict:
            raise
        key = (sw.name, str(text))
        if key not in _warned:
            _warned.add(key)
            from .plugin._warnings import SwitchValueWarning, emit_warning

            message = f"brainpy-poisson-plugin: {exc}; using the default ({sw.show(sw.default)})"
            emit_warning(message, SwitchValueWarning)
        return sw.default


def describe(switch: Switch | str) -> dict[str, object]:
    """What a switch holds, for ``doctor``: never raises, never warns.

    Returns ``{"name", "raw", "value", "shown", "default", "error"}``: ``value`` is what
    :func:`get` gives (``None`` for a strict switch with a bad value), ``error`` the
    message for a bad value (else ``None``).
    """
    sw = _lookup(switch)
    text = os.environ.get(sw.name)
    error = None
    try:
        value = sw.parse(text)
    except SwitchValueError as exc:
        error = str(exc)
        value = None if sw.strict else sw.default
    return {
        "name": sw.name,
        "raw": text,
        "value": value,
        "shown": "invalid" if value is None and sw.strict else sw.show(value),
        "default": sw.default,
        "error": error,
    }


def markdown_table() -> str:
    """The documentation's switch table (a Markdown table), generated from :data:`SWITCHES`."""
    lines = ["| environment variable | values | effect |", "|---|---|---|"]
    for sw in SWITCHES.values():
        for i, (values, effect) in enumerate(sw.doc_rows):
            lines.append(f"| {f'`{sw.name}`' if i == 0 else ''} | {values} | {effect} |")
    return "\n".join(lines)


def _lookup(switch: Switch | str) -> Switch:
    if isinstance(switch, Switch):
        return switch
    try:
        return SWITCHES[switch]
    except KeyError:
        raise KeyError(f"no environment switch named {switch!r}; known: {', '.join(SWITCHES)}") from None


def _reset_for_tests() -> None:
    """Forget which invalid values were already reported (tests only)."""
    _warned.clear()
