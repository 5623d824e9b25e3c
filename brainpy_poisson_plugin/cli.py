"""``brainpy-poisson`` command line.

Subcommands:

- ``doctor``: versions, discovered ``brainpy.plugins`` entry points, the state of the swap
  and why, what ``impl="auto"`` picks per platform, the registered FFI targets. Exit
  status 0 when healthy (things switched off on purpose are notes, not problems), 1 when
  something is broken (native library failed to load, a plugin failed, the version gate
  refused the host, the autoload hook is missing), 2 for usage errors.
- ``bench``: the workloads of DESIGN section 6 (see :mod:`brainpy_poisson_plugin.bench`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform as _platform
import sys
from collections.abc import Callable, Sequence
from typing import Any

PLATFORMS = ("cpu", "cuda")
ENV_NATIVE = "BRAINPY_POISSON_NATIVE"


# --------------------------------------------------------------------------------------
# doctor
# --------------------------------------------------------------------------------------


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
    try:
        dirs += site.getsitepackages()
    except Exception:  # noqa: BLE001
        pass
    try:
        dirs.append(site.getusersitepackages())
    except Exception:  # noqa: BLE001
        pass
    found = []
    for d in dict.fromkeys(dirs):
        path = os.path.join(d, "brainpy_poisson_plugin_autoload.pth")
        if os.path.isfile(path):
            found.append(path)
    return found


def _native_disabled_on_purpose() -> bool:
    return os.environ.get(ENV_NATIVE, "").strip().lower() in ("0", "off", "false", "no")


def collect_doctor_report() -> dict[str, Any]:
    """Gather everything ``doctor`` prints, as a JSON-serialisable dict.

    Keys: ``python``, ``versions``, ``autoload``, ``plugins``, ``swap``, ``impl``,
    ``native``, ``problems`` (each makes the exit status non-zero), ``notes``, ``ok``.
    """
    problems: list[str] = []
    notes: list[str] = []
    report: dict[str, Any] = {
        "python": {"version": _platform.python_version(), "executable": sys.executable},
        "versions": {name: _dist_version(name) for name in ("brainpy", "jax", "jaxlib", "brainpy-poisson-plugin", "pluggy")},
    }

    # 1. The autoload hook: how did this process start? (Inspect before importing brainpy.)
    from brainpy_poisson_plugin.plugin import autoload, manager

    pth = _pth_files()
    report["autoload"] = {
        "pth_files": pth,
        "state_before_import": autoload.state,
        "started_by": autoload.started_by,
    }

    # 2. Import brainpy: with the hook in place this runs the plugin loader.
    try:
        import brainpy  # noqa: F401
    except Exception as exc:  # noqa: BLE001
        problems.append(f"import brainpy failed: {type(exc).__name__}: {exc}")
        report.update(problems=problems, notes=notes, ok=False)
        return report

    report["autoload"]["state"] = autoload.state
    report["autoload"]["loader_result"] = manager.last_autoload
    if autoload.error:
        report["autoload"]["error"] = autoload.error
    if manager.autoload_disabled():
        notes.append(f"plugin autoload disabled by {manager.ENV_DISABLE_AUTOLOAD}=1")
    elif autoload.started_by != "pth" or autoload.state == "not-installed":
        problems.append(
            "the autoload .pth hook did not run at start-up "
            + ("(brainpy_poisson_plugin_autoload.pth not found in site-packages)" if not pth else f"(found {pth[0]})")
            + "; `import brainpy` will not load plugins"
        )
    elif autoload.state == "failed":
        problems.append(f"the plugin loader failed: {autoload.error}")

    # 3. Plugins (load them for inspection if the hook did not).
    mgr = manager.get_manager()
    if not manager.autoload_disabled():
        mgr.load_entry_points()
    plugins = []
    for record in mgr.plugin_records():
        entry = record.as_dict()
        plugins.append(entry)
        if record.status != "loaded":
            problems.append(f"plugin {record.label}: {record.status}: {record.error}")
    report["plugins"] = plugins
    if not manager.autoload_disabled() and not any(
        r.status == "loaded" and r.value == "brainpy_poisson_plugin.plugin.hooks" for r in mgr.plugin_records()
    ):
        problems.append("this package's own entry point (brainpy.plugins: poisson) was not found or did not load")

    # 4. The swap.
    from brainpy_poisson_plugin.plugin import swap, version_gate

    st = swap.status()
    report["swap"] = st.as_dict()
    if not st.active:
        if st.deliberate:
            notes.append(f"swap off: {st.reason}")
        else:
            problems.append(f"swap not active: {st.reason}")
    gate = version_gate.decide(warn=False)
    if gate.switch == "force" and not gate.in_range:
        notes.append(gate.reason)

    # 5. Native library, implementation per platform, FFI targets.
    from brainpy_poisson_plugin import config

    native_info: dict[str, Any] = {"disabled": _native_disabled_on_purpose()}
    try:
        from brainpy_poisson_plugin.ops import native
    except Exception as exc:  # noqa: BLE001
        native = None
        native_info["import_error"] = f"{type(exc).__name__}: {exc}"
        problems.append(f"cannot import brainpy_poisson_plugin.ops.native: {native_info['import_error']}")
    available: dict[str, bool] = {}
    if native is not None:
        try:
            native_info["load"] = _jsonable(native.load())
        except Exception as exc:  # noqa: BLE001
            native_info["load"] = f"{type(exc).__name__}: {exc}"
        error = _safe(native.load_error)
        native_info["load_error"] = error
        native_info["targets"] = _safe(native.registered_targets) or []
        for plat in PLATFORMS:
            available[plat] = bool(_safe(lambda p=plat: native.available(p)))
        if native_info["disabled"]:
            notes.append(f"native library disabled by {ENV_NATIVE}=0: the pure-JAX reference is used")
        elif error:
            problems.append(f"native library failed to load: {error}")
        elif not available.get("cpu"):
            problems.append("native library loaded but the CPU fused kernel is not available")
    report["native"] = native_info

    devices = _device_platforms()
    default = config.default_impl()
    impl: dict[str, Any] = {"default": default, "env": os.environ.get("BRAINPY_POISSON_IMPL"), "platforms": {}}
    for plat in PLATFORMS:
        present = plat in devices
        if default != "auto":
            choice = default
            why = "process default (set_default_impl / BRAINPY_POISSON_IMPL)"
        elif available.get(plat):
            choice, why = "fused", "native kernel loaded"
        else:
            choice, why = "reference", "no native kernel for this platform"
        impl["platforms"][plat] = {"device_present": present, "auto_picks": choice, "why": why}
    if default != "auto":
        notes.append(f'impl="auto" is overridden to {default!r}')
    report["impl"] = impl
    report["devices"] = sorted(devices)

    report["problems"] = problems
    report["notes"] = notes
    report["ok"] = not problems
    return report


def _safe(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001
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
    except Exception:  # noqa: BLE001
        return {"cpu"}


def format_doctor_report(report: dict[str, Any]) -> str:
    """Human-readable form of :func:`collect_doctor_report`."""
    lines = ["brainpy-poisson doctor", ""]
    py = report["python"]
    lines.append(f"  python      {py['version']} ({py['executable']})")
    for name, ver in report["versions"].items():
        lines.append(f"  {name:<11} {ver or 'not installed'}")
    auto = report.get("autoload", {})
    if auto:
        lines += ["", "autoload (.pth import hook)"]
        lines.append(f"  pth file    {', '.join(auto.get('pth_files') or []) or 'not found'}")
        lines.append(f"  hook        started by {auto.get('started_by') or 'nobody'}; state {auto.get('state', auto.get('state_before_import'))}")
    if "plugins" in report:
        lines += ["", "plugins (entry-point group brainpy.plugins)"]
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
    if "swap" in report:
        sw = report["swap"]
        lines += ["", "swap"]
        lines.append(f"  active      {'yes' if sw['active'] else 'no'}")
        lines.append(f"  why         {sw['reason']}")
        lines.append(f"  brainpy     {sw['host_version']} (supported {sw['supported']}; BRAINPY_POISSON_PLUGIN={sw['switch']})")
        for name, where in sw["targets"].items():
            lines.append(f"  {name:<40} {where}")
        for kind, forms in sw.get("state_forms", {}).items():  # brainpy.state forms (host.state_forms)
            lines.append(f"  brainpy.state {kind:<9} {', '.join(forms)}")
    if "impl" in report:
        im = report["impl"]
        lines += ["", 'implementation for impl="auto"']
        lines.append(f"  default     {im['default']}")
        for plat, d in im["platforms"].items():
            dev = "" if d["device_present"] else " (no device)"
            lines.append(f"  {plat:<11} {d['auto_picks']} - {d['why']}{dev}")
    if "native" in report:
        na = report["native"]
        lines += ["", "native library"]
        if na.get("disabled"):
            lines.append(f"  status      disabled by {ENV_NATIVE}=0")
        elif na.get("import_error") or na.get("load_error"):
            lines.append(f"  status      FAILED: {na.get('import_error') or na.get('load_error')}")
        else:
            lines.append("  status      loaded")
        targets = na.get("targets")
        if isinstance(targets, list):
            lines.append(f"  ffi targets {', '.join(targets) or '(none)'}")
    lines.append("")
    for note in report.get("notes", []):
        lines.append(f"note: {note}")
    for problem in report.get("problems", []):
        lines.append(f"PROBLEM: {problem}")
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
