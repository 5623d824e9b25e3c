"""``brainpy-poisson`` command line.

Subcommands:

- ``doctor``: versions, every environment switch, discovered ``brainpy.plugins`` entry
  points, the state of the swap and why, what ``impl="auto"`` picks per platform, the
  registered FFI targets. Each section comes from one probe (:data:`PROBES`). Exit
  status 0 when healthy (things switched off on purpose are notes, not problems), 1 when
  something is broken (native library failed to load, a plugin failed, the version gate
  refused the host, the autoload hook is missing), 2 for usage errors.
- ``bench``: the benchmark workloads W1-W5 (see :mod:`brainpy_poisson_plugin.bench.workloads`).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import json
import os
import platform as _platform
import sys
from collections.abc import Callable, Sequence
from typing import Any

PLATFORMS = ("cpu", "cuda")
#: Distributions whose versions ``doctor`` shows.
VERSIONS_OF = ("brainpy", "jax", "jaxlib", "brainpy-poisson-plugin", "pluggy")
#: The value of this package's own ``brainpy.plugins`` entry point.
OWN_ENTRY_POINT = "brainpy_poisson_plugin.plugin.hooks"


# --------------------------------------------------------------------------------------
# doctor: one probe per section of the report
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class Findings:
    """What the probes found that is not data: problems (exit status 1) and notes."""

    problems: list[str] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)


class _StopProbing(Exception):
    """Raised by a probe when the later sections cannot be collected (BrainPy did not import)."""


#: A probe fills one section of the report (``report[section]``) and adds its findings.
Probe = Callable[[dict[str, Any], Findings], None]


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _pth_files() -> list[str]:
    """Where the autoload ``.pth`` file is installed (site directories only)."""
    import site

    dirs: list[str] = []
    with contextlib.suppress(Exception):
        dirs += site.getsitepackages()
    with contextlib.suppress(Exception):
        dirs.append(site.getusersitepackages())
    found = []
    for d in dict.fromkeys(dirs):
        path = os.path.join(d, "brainpy_poisson_plugin_autoload.pth")
        if os.path.isfile(path):
            found.append(path)
    return found


def probe_python(report: dict[str, Any], found: Findings) -> None:
    """Sections ``python`` and ``versions``: the interpreter and the installed distributions."""
    report["python"] = {"version": _platform.python_version(), "executable": sys.executable}
    report["versions"] = {name: _dist_version(name) for name in VERSIONS_OF}


def probe_switches(report: dict[str, Any], found: Findings) -> None:
    """Section ``switches``: every environment switch, its raw text and parsed value.

    A value a switch does not allow is a problem naming the variable.
    """
    from . import switches

    entries = {}
    for sw in switches.SWITCHES.values():
        entry = switches.describe(sw)
        entries[sw.name] = entry
        if entry["error"]:
            fallback = "" if sw.strict else f"; the default ({sw.show(sw.default)}) is used"
            found.problems.append(f"{entry['error']}{fallback}")
    report["switches"] = entries


def probe_autoload(report: dict[str, Any], found: Findings) -> None:
    """Section ``autoload``: the start-up hook, inspected before and after ``import brainpy``.

    Importing BrainPy here runs the plugin loader when the hook is in place; if BrainPy
    does not import, the report stops after this section.
    """
    from .plugin import autoload, manager

    pth = _pth_files()
    section: dict[str, Any] = {
        "pth_files": pth,
        "state_before_import": autoload.state,
        "started_by": autoload.started_by,
    }
    report["autoload"] = section
    try:
        importlib.import_module("brainpy")  # with the hook in place this runs the plugin loader
    except Exception as exc:
        found.problems.append(f"import brainpy failed: {type(exc).__name__}: {exc}")
        raise _StopProbing from exc
    section["state"] = autoload.state
    section["loader_result"] = manager.last_autoload
    if autoload.error:
        section["error"] = autoload.error
    if manager.autoload_disabled():
        found.notes.append(f"plugin autoload disabled by {manager.ENV_DISABLE_AUTOLOAD}")
    elif autoload.started_by != "pth" or autoload.state == "not-installed":
        where = f"(found {pth[0]})" if pth else "(brainpy_poisson_plugin_autoload.pth not found in site-packages)"
        found.problems.append(
            f"the autoload .pth hook did not run at start-up {where}; `import brainpy` will not load plugins"
        )
    elif autoload.state == "failed":
        found.problems.append(f"the plugin loader failed: {autoload.error}")


def probe_plugins(report: dict[str, Any], found: Findings) -> None:
    """Section ``plugins``: every ``brainpy.plugins`` entry point and whether it loaded."""
    from .plugin import manager

    mgr = manager.get_manager()
    disabled = manager.autoload_disabled()
    if not disabled:
        mgr.load_entry_points()  # for inspection, if the hook did not
    records = mgr.plugin_records()
    report["plugins"] = [record.as_dict() for record in records]
    for record in records:
        if record.status != "loaded":
            found.problems.append(f"plugin {record.label}: {record.status}: {record.error}")
    own = any(r.status == "loaded" and r.value == OWN_ENTRY_POINT for r in records)
    if not disabled and not own:
        found.problems.append("this package's own entry point (brainpy.plugins: poisson) was not found or did not load")


def probe_swap(report: dict[str, Any], found: Findings) -> None:
    """Section ``swap``: whether ``bp.dyn.PoissonInput`` is the plugin's class, and why."""
    from .plugin import swap, version_gate

    st = swap.status()
    report["swap"] = st.as_dict()
    if not st.active:
        (found.notes if st.deliberate else found.problems).append(
            f"swap off: {st.reason}" if st.deliberate else f"swap not active: {st.reason}"
        )
    gate = version_gate.decide(warn=False)
    if gate.switch == "force" and not gate.in_range:
        found.notes.append(gate.reason)


def probe_native(report: dict[str, Any], found: Findings) -> None:
    """Section ``native``: whether the native library loaded, and the FFI targets registered."""
    from . import switches

    section: dict[str, Any] = {"disabled": not switches.describe(switches.NATIVE)["value"]}
    report["native"] = section
    try:
        from .ops import native
    except Exception as exc:
        section["import_error"] = f"{type(exc).__name__}: {exc}"
        found.problems.append(f"cannot import brainpy_poisson_plugin.ops.native: {section['import_error']}")
        return
    section["load"] = _jsonable(_safe(native.load))
    error = _safe(native.load_error)
    section["load_error"] = error
    section["targets"] = _safe(native.registered_targets) or []
    if section["disabled"]:
        raw = (switches.raw(switches.NATIVE) or "").strip()
        found.notes.append(f"native library disabled by {switches.NATIVE.name}={raw}: the pure-JAX reference is used")
    elif error:
        found.problems.append(f"native library failed to load: {error}")
    elif _safe(lambda: native.available("cpu")) is not True:
        found.problems.append("native library loaded but the CPU fused kernel is not available")


def probe_impl(report: dict[str, Any], found: Findings) -> None:
    """Sections ``impl`` and ``devices``: what ``impl="auto"`` runs on each platform.

    The answer comes from the code that decides: :func:`config.default_impl` (what
    ``PoissonInput(impl="auto")`` resolves through) and the lowering's own
    :func:`~brainpy_poisson_plugin.ops.lowering.uses_fused` (fused custom call or
    reference), for a float32 target.
    """
    from . import config, switches

    devices = _device_platforms()
    report["devices"] = sorted(devices)
    try:
        default = config.default_impl()
    except ValueError as exc:  # a bad BRAINPY_POISSON_IMPL (reported by probe_switches)
        default = None
        error = str(exc)
    section: dict[str, Any] = {
        "default": default if default is not None else "invalid",
        "env": switches.raw(switches.IMPL),
        "platforms": {},
    }
    report["impl"] = section
    if default is None:
        section["error"] = error
        for plat in PLATFORMS:
            section["platforms"][plat] = {"device_present": plat in devices, "auto_picks": "error", "why": error}
        return
    from .ops import lowering

    for plat in PLATFORMS:
        entry = {"device_present": plat in devices, "dtypes": list(lowering.FUSED_DTYPES.get(plat, ()))}
        if default == "host":
            entry.update(auto_picks="host", why="process default: BrainPy's own class")
        else:
            try:
                fused = lowering.uses_fused(plat, default, "float32")
            except RuntimeError as exc:  # impl="fused" where no kernel exists
                entry.update(auto_picks="error", why=str(exc))
                found.problems.append(f'impl="auto" resolves to "fused" but on {plat}: {exc}')
            else:
                entry["auto_picks"] = "fused" if fused else "reference"
                if default != "auto":
                    entry["why"] = "process default (set_default_impl / using_impl / BRAINPY_POISSON_IMPL)"
                else:
                    entry["why"] = "native kernel loaded" if fused else "no native kernel for this platform"
        section["platforms"][plat] = entry
    if default != "auto":
        found.notes.append(f'impl="auto" is overridden to {default!r}')


#: The report's sections, in order (the autoload state is inspected before BrainPy imports).
PROBES: tuple[Probe, ...] = (
    probe_python,
    probe_switches,
    probe_autoload,
    probe_plugins,
    probe_swap,
    probe_native,
    probe_impl,
)


def collect_doctor_report(probes: Sequence[Probe] = PROBES) -> dict[str, Any]:
    """Gather everything ``doctor`` prints, as a JSON-serialisable dict. Never raises.

    Keys: ``python``, ``versions``, ``switches``, ``autoload``, ``plugins``, ``swap``,
    ``native``, ``impl``, ``devices``, then ``problems`` (each makes the exit status
    non-zero), ``notes`` and ``ok``. A probe that fails is itself reported as a problem.
    """
    report: dict[str, Any] = {}
    found = Findings()
    for probe in probes:
        try:
            probe(report, found)
        except _StopProbing:
            break
        except Exception as exc:  # doctor must never crash: a failing probe is a finding
            found.problems.append(f"doctor: {probe.__name__} failed: {type(exc).__name__}: {exc}")
    report["problems"] = found.problems
    report["notes"] = found.notes
    report["ok"] = not found.problems
    return report


def _safe(fn: Callable[[], Any]) -> Any:
    """``fn()``, or the exception it raised as ``"Type: message"`` (a finding, not a crash)."""
    try:
        return fn()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except TypeError:
        if isinstance(value, dict):
            return {str(k): _jsonable(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [_jsonable(v) for v in value]
        return repr(value)


def _device_platforms() -> set[str]:
    try:
        import jax

        return {d.platform for d in jax.devices()} | {"cpu"}
    except Exception:  # no usable JAX backend: the CPU is always there
        return {"cpu"}


def _format_versions(report: dict[str, Any]) -> list[str]:
    py = report["python"]
    lines = [f"  python      {py['version']} ({py['executable']})"]
    lines += [f"  {name:<11} {ver or 'not installed'}" for name, ver in report["versions"].items()]
    return lines


def _format_switches(report: dict[str, Any]) -> list[str]:
    lines = ["", "environment switches"]
    for name, sw in report["switches"].items():
        text = "unset" if sw["raw"] is None else repr(sw["raw"])
        lines.append(f"  {name:<34} {text:<10} -> {sw['shown']}" + (" (INVALID)" if sw["error"] else ""))
    return lines


def _format_autoload(report: dict[str, Any]) -> list[str]:
    auto = report["autoload"]
    state = auto.get("state", auto.get("state_before_import"))
    return [
        "",
        "autoload (.pth import hook)",
        f"  pth file    {', '.join(auto.get('pth_files') or []) or 'not found'}",
        f"  hook        started by {auto.get('started_by') or 'nobody'}; state {state}",
    ]


def _format_plugins(report: dict[str, Any]) -> list[str]:
    lines = ["", "plugins (entry-point group brainpy.plugins)"]
    if not report["plugins"]:
        lines.append("  (none)")
    for p in report["plugins"]:
        info = p.get("info") or {}
        ver = info.get("version") or p.get("dist_version") or "?"
        supported = f", supports brainpy{info['supported_host']}" if info.get("supported_host") else ""
        lines.append(f"  {p['name']:<11} {p['value']}  [{p.get('dist') or '?'} {ver}]  {p['status']}{supported}")
        if p.get("error"):
            lines.append(f"              {p['error']}")
        if p.get("overrides"):
            lines.append(f"              overrides: {', '.join(p['overrides'])}")
    return lines


def _format_swap(report: dict[str, Any]) -> list[str]:
    sw = report["swap"]
    lines = [
        "",
        "swap",
        f"  active      {'yes' if sw['active'] else 'no'}",
        f"  why         {sw['reason']}",
        f"  brainpy     {sw['host_version']} (supported {sw['supported']}; BRAINPY_POISSON_PLUGIN={sw['switch']})",
    ]
    lines += [f"  {name:<40} {where}" for name, where in sw["targets"].items()]
    for kind, forms in sw.get("state_forms", {}).items():  # brainpy.state forms (host.state_forms)
        lines.append(f"  brainpy.state {kind:<9} {', '.join(forms)}")
    return lines


def _format_impl(report: dict[str, Any]) -> list[str]:
    im = report["impl"]
    lines = ["", 'implementation for impl="auto"', f"  default     {im['default']}"]
    for plat, d in im["platforms"].items():
        dev = "" if d["device_present"] else " (no device)"
        lines.append(f"  {plat:<11} {d['auto_picks']} - {d.get('why', '')}{dev}")
    return lines


def _format_native(report: dict[str, Any]) -> list[str]:
    na = report["native"]
    lines = ["", "native library"]
    if na.get("disabled"):
        lines.append("  status      disabled by BRAINPY_POISSON_NATIVE")
    elif na.get("import_error") or na.get("load_error"):
        lines.append(f"  status      FAILED: {na.get('import_error') or na.get('load_error')}")
    else:
        lines.append("  status      loaded")
    targets = na.get("targets")
    if isinstance(targets, list):
        lines.append(f"  ffi targets {', '.join(targets) or '(none)'}")
    return lines


#: ``(section key, formatter)`` in the order the text report shows them.
_FORMATTERS: tuple[tuple[str, Callable[[dict[str, Any]], list[str]]], ...] = (
    ("versions", _format_versions),
    ("switches", _format_switches),
    ("autoload", _format_autoload),
    ("plugins", _format_plugins),
    ("swap", _format_swap),
    ("impl", _format_impl),
    ("native", _format_native),
)


def format_doctor_report(report: dict[str, Any]) -> str:
    """Human-readable form of :func:`collect_doctor_report` (sections the report lacks are left out)."""
    lines = ["brainpy-poisson doctor", ""]
    for key, fmt in _FORMATTERS:
        if report.get(key) is not None:
            try:
                lines += fmt(report)
            except (KeyError, TypeError) as exc:  # a section a failed probe left incomplete
                lines.append(f"  ({key}: cannot show: {type(exc).__name__}: {exc})")
    lines.append("")
    lines += [f"note: {note}" for note in report.get("notes", [])]
    lines += [f"PROBLEM: {problem}" for problem in report.get("problems", [])]
    lines.append("status: " + ("OK" if report.get("ok") else "BROKEN"))
    return "\n".join(lines)


def cmd_doctor(args: argparse.Namespace) -> int:
    """Run ``brainpy-poisson doctor``: print the report (or JSON) and return the exit status (1 when broken)."""
    report = collect_doctor_report()
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True, default=repr))
    else:
        print(format_doctor_report(report))
    return 0 if report["ok"] else 1


def _add_doctor(sub: Any) -> None:
    p = sub.add_parser("doctor", help="check the installation and explain what the plugin does here")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_doctor)


def _add_bench(sub: Any) -> None:
    p = sub.add_parser("bench", help="benchmark the workloads W1-W5 against BrainPy's PoissonInput and the floors")

    def run_bench(args: Any) -> int:
        from .bench.runner import run  # imported only when used: it imports BrainPy and JAX

        return run(args)

    from .bench.runner import add_arguments

    add_arguments(p)
    p.set_defaults(func=run_bench)


# Each entry adds one subcommand to the parser.
_SUBCOMMANDS: tuple[Callable[[Any], None], ...] = (_add_doctor, _add_bench)


def build_parser() -> argparse.ArgumentParser:
    """The ``brainpy-poisson`` argument parser with every subcommand of ``_SUBCOMMANDS``."""
    parser = argparse.ArgumentParser(
        prog="brainpy-poisson",
        description="Exact fused Poisson input for BrainPy: diagnostics and tools.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in _SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``brainpy-poisson`` / ``python -m brainpy_poisson_plugin``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
