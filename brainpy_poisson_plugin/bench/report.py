"""Turning benchmark rows into a printed table, a JSON file and a PNG bar chart."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

__all__ = [
    "add_ratios",
    "format_table",
    "format_markdown",
    "format_machine_markdown",
    "write_json",
    "write_chart",
    "SCHEMA",
]

#: Identifies the JSON layout; bump when it changes.
SCHEMA = "brainpy-poisson-bench/1"


def _median(row: dict[str, Any]) -> float | None:
    stats = row.get("ns_per_neuron_step")
    return None if not stats else stats["median"]


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """Fill ``speedup_vs_host`` (host / this) and ``ratio_to_rng_floor`` (this / floor)
    for each row, against the rows of the same workload and platform measured in the
    same run; ``None`` where either side is missing."""
    for row in rows:
        peers = {
            r["impl"]: _median(r) for r in rows if r["workload"] == row["workload"] and r["platform"] == row["platform"]
        }
        mine = _median(row)
        host = peers.get("host")
        floor = peers.get("rng-floor")
        row["speedup_vs_host"] = host / mine if mine and host else None
        row["ratio_to_rng_floor"] = mine / floor if mine and floor else None


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def format_table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table: workload, platform, impl, ns/neuron/step (median), the
    min-max spread, compile seconds, speed-up over the host and ratio to the RNG floor."""
    header = (
        "workload",
        "platform",
        "impl",
        "ns/neuron/step",
        "spread (min-max)",
        "compile s",
        "x host",
        "/ rng floor",
    )
    lines = [header]
    notes: dict[str, str] = {}
    for r in rows:
        s: Any = r.get("ns_per_neuron_step")
        if r["status"] != "ok":
            note = f"{r['impl']} on {r['platform']}: {r.get('reason', '')}"
            mark = notes.setdefault(note, f"[{len(notes) + 1}]")
            lines.append((r["workload"], r["platform"], r["impl"], f"{r['status']} {mark}", "", "", "", ""))
            continue
        lines.append(
            (
                r["workload"],
                r["platform"],
                r["impl"],
                _fmt(s["median"], ".3g"),
                f"{s['min']:.3g}-{s['max']:.3g}",
                _fmt(r.get("compile_s"), ".2f"),
                _fmt(r.get("speedup_vs_host"), ".2f"),
                _fmt(r.get("ratio_to_rng_floor"), ".2f"),
            )
        )
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    out = []
    for k, line in enumerate(lines):
        out.append(
            "  ".join(str(c).ljust(w) if i < 3 else str(c).rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
        )
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    out.extend(f"{mark} {note}" for note, mark in notes.items())
    return "\n".join(out)


def format_markdown(rows: list[dict[str, Any]]) -> str:
    """The same table as Markdown (for the performance page)."""
    lines = [
        "| workload | platform | impl | ns/neuron/step | spread (min-max) | compile s "
        "| speed-up over host | ratio to RNG floor |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        s: Any = r.get("ns_per_neuron_step")
        if r["status"] != "ok":
            lines.append(f"| {r['workload']} | {r['platform']} | {r['impl']} | {r['status']} | | | | |")
            continue
        lines.append(
            f"| {r['workload']} | {r['platform']} | {r['impl']} | {s['median']:.3g} | "
            f"{s['min']:.3g}-{s['max']:.3g} | {_fmt(r.get('compile_s'), '.2f')} | "
            f"{_fmt(r.get('speedup_vs_host'), '.2f')} | {_fmt(r.get('ratio_to_rng_floor'), '.2f')} |"
        )
    return "\n".join(lines)


def format_machine_markdown(info: dict[str, Any], created: str | None = None) -> str:
    """The machine description of ``bench.json`` as a Markdown list."""
    versions = ", ".join(f"{k} {v}" for k, v in info.get("versions", {}).items() if v)
    lines = [
        f"- CPU: {info.get('cpu_model', '?')}, {info.get('cpu_cores', '?')} cores",
        f"- OS: {info.get('platform', '?')}; Python {info.get('python', '?')}",
        f"- Versions: {versions}",
        f"- JAX backend: {info.get('jax_backend', '?')}; devices: {', '.join(info.get('devices', []))}",
    ]
    if created:
        lines.append(f"- Measured: {created}")
    return "\n".join(lines)


def write_json(path: Path, document: dict[str, Any]) -> Path:
    """Write ``document`` (with ``schema`` added) as indented JSON; return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"schema": SCHEMA, **document}, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


def write_chart(path: Path, rows: list[dict[str, Any]], title: str = "") -> Path | None:
    """Grouped bar chart of the median ns/neuron/step (log scale, min-max whiskers), one
    panel per platform. Returns ``None`` when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    ok = [r for r in rows if r["status"] == "ok"]
    plats = sorted({r["platform"] for r in rows}) or ["cpu"]
    impls = [i for i in ("host", "reference", "fused", "rng-floor", "mem-floor") if any(r["impl"] == i for r in ok)]
    colors = {
        "host": "#888888",
        "reference": "#1f77b4",
        "fused": "#d62728",
        "rng-floor": "#2ca02c",
        "mem-floor": "#9467bd",
    }
    fig, axes = plt.subplots(len(plats), 1, figsize=(9, 3.6 * len(plats)), squeeze=False)
    for ax, plat in zip(axes[:, 0], plats):
        wls = sorted({r["workload"] for r in ok if r["platform"] == plat})
        width = 0.8 / max(len(impls), 1)
        for j, impl in enumerate(impls):
            xs, ys, lo, hi = [], [], [], []
            for i, wl in enumerate(wls):
                match = [r for r in ok if r["platform"] == plat and r["workload"] == wl and r["impl"] == impl]
                if not match:
                    continue
                s = match[0]["ns_per_neuron_step"]
                xs.append(i - 0.4 + width * (j + 0.5))
                ys.append(s["median"])
                lo.append(s["median"] - s["min"])
                hi.append(s["max"] - s["median"])
            if xs:
                ax.bar(xs, ys, width, yerr=[lo, hi], label=impl, color=colors.get(impl), capsize=2)
        ax.set_xticks(range(len(wls)), wls)
        ax.set_yscale("log")
        ax.set_ylabel("ns / neuron / step")
        ax.set_title(f"{title} ({plat})".strip())
        ax.grid(axis="y", which="both", alpha=0.3)
        if impls:
            ax.legend(fontsize=8, ncol=len(impls))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def add_baseline_ratios(rows: list[dict[str, Any]], baselines: dict[str, str | None]) -> None:
    """Fill ``ratio_to_baseline`` (this / the same impl on the constant-rate workload
    ``baselines[workload]``, measured in the same run) for W6/W7-style rows; ``None``
    elsewhere or where either side is missing."""
    for row in rows:
        base_id = baselines.get(row["workload"])
        base = next(
            (
                _median(r)
                for r in rows
                if r["workload"] == base_id and r["platform"] == row["platform"] and r["impl"] == row["impl"]
            ),
            None,
        )
        mine = _median(row)
        row["ratio_to_baseline"] = mine / base if mine and base else None


def format_baseline_ratios(rows: list[dict[str, Any]], baselines: dict[str, str | None]) -> str:
    """Lines like ``W6 / W6-CONST (cpu): host 4.9x, reference 1.39x, fused 1.22x``, or an
    empty string when no measured workload has a baseline."""
    lines = []
    for wl, base in baselines.items():
        if base is None:
            continue
        for plat in sorted({r["platform"] for r in rows if r["workload"] == wl}):
            parts = [
                f"{r['impl']} {r['ratio_to_baseline']:.2f}x"
                for r in rows
                if r["workload"] == wl and r["platform"] == plat and r.get("ratio_to_baseline")
            ]
            if parts:
                lines.append(f"{wl} / {base} ({plat}): " + ", ".join(parts))
    return "\n".join(lines)
