"""``brainpy-poisson bench``: the command line and the loop over cases."""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from . import report, timing
from .workloads import default_steps, get_workloads

__all__ = ["add_arguments", "run", "main"]

DEFAULT_OUT = Path("benchmarks") / "results"


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``bench`` options to ``parser`` (also used by ``brainpy-poisson bench``)."""
    parser.add_argument("--quick", action="store_true", help="small sizes and few steps: a smoke test (< 1 min)")
    parser.add_argument("--workloads", type=_csv, default=None, metavar="W1,W3", help="workloads to run (default: all)")
    parser.add_argument(
        "--impls",
        type=_csv,
        default=None,
        metavar="host,fused",
        help="implementations to run: host, reference, fused, rng-floor, mem-floor (default: all available)",
    )
    parser.add_argument(
        "--platforms", type=_csv, default=None, metavar="cpu,gpu", help="JAX platforms (default: every one present)"
    )
    parser.add_argument("--steps", type=int, default=None, help="steps per timed call (default: by workload size)")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per case (default 7; 3 with --quick)")
    parser.add_argument("--seed", type=int, default=0, help="bm.random.seed before each case")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"directory for bench.json / bench.png (default {DEFAULT_OUT}/)"
    )
    parser.add_argument("--no-progress", action="store_true", help="plain lines instead of a progress bar")
    parser.add_argument(
        "--scaling",
        action="store_true",
        help="weak scaling instead: W5 per device over 1, 2 and 4 forced CPU devices, a fresh process each",
    )
    return parser


class _Progress:
    """A tqdm bar when tqdm is importable and asked for; plain lines otherwise."""

    def __init__(self, total: int, enabled: bool):
        self._bar = None
        self._done = 0
        self._total = total
        if enabled:
            try:
                from tqdm import tqdm

                self._bar = tqdm(total=total, unit="case", file=sys.stderr, dynamic_ncols=True)
            except ImportError:
                self._bar = None

    def start(self, label: str) -> None:
        """Show that the case ``label`` is running now."""
        if self._bar is not None:
            self._bar.set_description(label)
        else:
            print(f"[{self._done + 1}/{self._total}] {label}", file=sys.stderr, flush=True)

    def advance(self) -> None:
        """Count one more case as done."""
        self._done += 1
        if self._bar is not None:
            self._bar.update(1)

    def close(self) -> None:
        """End the progress display."""
        if self._bar is not None:
            self._bar.close()


def _cases(args: argparse.Namespace, plats: Sequence[str]) -> Iterable[tuple[Any, str, str]]:
    from .steppers import IMPLS

    impls = args.impls or list(IMPLS)
    for plat in plats:
        for wl in get_workloads(args.workloads, platform=plat, quick=args.quick):
            for impl in impls:
                yield wl, plat, impl


def run(args: argparse.Namespace) -> int:
    """Run the benchmark described by parsed ``args``; print the table, write
    ``<out>/bench.json``, ``bench.md`` (the table), ``bench-machine.md`` and ``bench.png``
    (``bench-quick.*`` with ``--quick``). Returns 0, or 1 when a case failed (unavailable ones do not count)."""
    if getattr(args, "scaling", False):
        from . import scaling

        return scaling.run(args)
    from . import steppers

    if args.impls:
        for impl in args.impls:
            if impl not in steppers.IMPLS:
                print(
                    f"error: unknown implementation {impl!r}; choose from {', '.join(steppers.IMPLS)}", file=sys.stderr
                )
                return 2
    present = steppers.platforms()
    plats = args.platforms or present
    for plat in plats:
        if plat not in present:
            print(f"error: platform {plat!r} not present (found: {', '.join(present)})", file=sys.stderr)
            return 2
    try:
        cases = list(_cases(args, plats))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    repeats = args.repeats or (3 if args.quick else 7)

    rows: list[dict[str, Any]] = []
    progress = _Progress(len(cases), enabled=not args.no_progress)
    try:
        for wl, plat, impl in cases:
            progress.start(f"{wl.id} {plat} {impl}")
            steps = args.steps or default_steps(wl, args.quick)
            row: dict[str, Any] = {
                "workload": wl.id,
                "platform": plat,
                "impl": impl,
                "shape": list(wl.shape),
                "elements": wl.elements,
                "num_input": wl.num_input,
                "freq_hz": wl.freq,
                "dt_ms": wl.dt,
                "p": wl.p,
                "mean_count": wl.mean_count,
                "batching": wl.batching,
                "steps": steps,
                "repeats": repeats,
            }
            reason = steppers.unavailable_reason(impl, plat)
            if reason is None and wl.api == "state":  # W8 needs brainpy.state
                from .state_stepper import state_unavailable_reason

                reason = state_unavailable_reason()
            if reason is not None:
                row.update(status="unavailable", reason=reason)
            else:
                try:
                    fn = steppers.build_case(wl, impl, plat, steps, seed=args.seed)
                    m = timing.measure(fn, steps=steps, elements=wl.elements, repeats=repeats)
                    row.update(
                        status="ok",
                        compile_s=m.compile_s,
                        runs_s=list(m.runs_s),
                        ns_per_neuron_step=m.summary(),
                    )
                except Exception as exc:
                    row.update(status="error", reason=f"{type(exc).__name__}: {exc}")
            rows.append(row)
            progress.advance()
    finally:
        progress.close()

    report.add_ratios(rows)
    baselines = {wl.id: wl.baseline for wl, _, _ in cases}
    report.add_baseline_ratios(rows, baselines)
    print(report.format_table(rows))
    if against_baseline := report.format_baseline_ratios(rows, baselines):
        print("\ntime-varying rate / constant rate, same impl:\n" + against_baseline)
    name = "bench-quick" if args.quick else "bench"
    doc: dict[str, Any] = {
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "command": "brainpy-poisson bench " + " ".join(getattr(args, "_argv", []) or []),
        "quick": bool(args.quick),
        "repeats": repeats,
        "machine": timing.machine_info(),
        "results": rows,
    }
    out_dir = Path(args.out)
    json_path = report.write_json(out_dir / f"{name}.json", doc)
    (out_dir / f"{name}.md").write_text(report.format_markdown(rows) + "\n", encoding="utf-8")
    (out_dir / f"{name}-machine.md").write_text(
        report.format_machine_markdown(doc["machine"], doc["created"]) + "\n", encoding="utf-8"
    )
    png = report.write_chart(out_dir / f"{name}.png", rows, title="brainpy-poisson bench")
    print(f"\nwrote {json_path}" + (f" and {png}" if png else " (no chart: matplotlib missing)"))
    errors = [r for r in rows if r["status"] == "error"]
    for r in errors:
        print(f"error in {r['workload']} {r['platform']} {r['impl']}: {r['reason']}", file=sys.stderr)
    return 1 if errors else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: ``brainpy-poisson bench [options]`` or ``python -m brainpy_poisson_plugin.bench``."""
    parser = argparse.ArgumentParser(
        prog="brainpy-poisson bench",
        description="Steady-state ns per neuron per step of the Poisson-input implementations "
        "on the workloads W1-W7, against the RNG and memory floors.",
    )
    add_arguments(parser)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args._argv = argv
    return run(args)
