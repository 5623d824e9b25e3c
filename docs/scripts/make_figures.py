"""Figures of the "How it works" page, drawn from the plugin's own tables.

- ``inversion.png``: the exact table of Binomial(10, 0.3): its CDF as a staircase, the
  64-bit fixed-point thresholds ``T[j]`` on the uniform axis, and how a few uniform
  words ``u`` become counts ``k = k0 + #{j : T[j] <= u}``.
- ``fused_pass.png``: one element's path through the fused pass, and why the global
  flat index makes the result independent of how the array is split over devices.

    python docs/scripts/make_figures.py [--out docs/_generated]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "_generated"


def inversion_figure(path: Path, n: int = 10, p: float = 0.3) -> None:
    import matplotlib.pyplot as plt

    from brainpy_poisson_plugin.sampling.tables import binomial_table

    table = binomial_table(n, p)
    thresholds = table.thresholds.astype(np.float64) / 2.0**64  # for drawing only
    pmf = table.implied_pmf()
    ks = table.k0 + np.arange(pmf.size)

    fig, (ax_pmf, ax_cdf) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [1, 1.5]})
    ax_pmf.bar(ks, pmf, color="tab:blue", alpha=0.8)
    ax_pmf.set_xlabel("k")
    ax_pmf.set_ylabel("P(X = k)")
    ax_pmf.set_title(f"Binomial({n}, {p}): pmf realised by the table\nk0 = {table.k0}, L = {table.size} thresholds")

    # The staircase: u in [T[j-1], T[j]) gives count k0 + j.
    edges = np.concatenate([[0.0], thresholds, [1.0]])
    for j in range(pmf.size):
        ax_cdf.fill_betweenx([edges[j], edges[j + 1]], ks[j] - 0.4, ks[j] + 0.4, color="tab:blue", alpha=0.25)
    last_label = -1.0
    for j, t in enumerate(thresholds):
        ax_cdf.axhline(t, color="tab:gray", lw=0.6, ls="--")
        if t - last_label > 0.04 and t < 0.97:  # label the thresholds that do not overlap
            ax_cdf.text(ks[-1] + 0.6, t, f"T[{j}]", va="center", fontsize=7, color="tab:gray")
            last_label = t
    rng = np.random.default_rng(3)
    for u in sorted(rng.random(3)):
        c = int(np.searchsorted(thresholds, u, side="right"))
        ax_cdf.annotate(
            "", xy=(ks[c], u), xytext=(ks[0] - 1.2, u), arrowprops=dict(arrowstyle="->", color="tab:red", lw=1.2)
        )
        ax_cdf.text(ks[0] - 1.15, u + 0.012, f"u={u:.2f} -> k={ks[c]}", color="tab:red", fontsize=8)
    ax_cdf.set_xlim(ks[0] - 1.3, ks[-1] + 1.3)
    ax_cdf.set_ylim(0, 1)
    ax_cdf.set_xlabel("k = k0 + #{j : T[j] <= u}")
    ax_cdf.set_ylabel("u / 2^64 (one uniform 64-bit word)")
    ax_cdf.set_title("Inversion: integer comparisons\nagainst fixed-point CDF thresholds")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fused_pass_figure(path: Path) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    fig, ax = plt.subplots(figsize=(10, 4.4))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 4.4)
    ax.axis("off")

    def box(x, y, w, h, text, color):
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05", fc=color, ec="black", lw=0.8))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8.5)

    def arrow(x0, y0, x1, y1):
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops=dict(arrowstyle="->", lw=1.2))

    y = 2.9
    steps = [
        ("global flat index g\n(origin of the shard\n+ local index)", "#e8eef8"),
        ("threefry2x32(key, (0, g))\n-> u, 64 bits", "#e8f4e8"),
        ("c = #{j : T[j] <= u}\n(guide table /\nbinary search)", "#fdf0e0"),
        ("target[i] +=\nincrements[c]\n(in place)", "#f8e8e8"),
    ]
    x = 0.2
    for k, (text, color) in enumerate(steps):
        box(x, y, 2.1, 1.1, text, color)
        if k:
            arrow(x - 0.38, y + 0.55, x - 0.02, y + 0.55)
        x += 2.45
    ax.text(
        5,
        4.25,
        "One pass per element: nothing stored between the steps, no random array in memory",
        ha="center",
        fontsize=9.5,
        weight="bold",
    )

    # Device independence: the same array on 1 and on 2 devices.
    n = 8
    for row, (label, split) in enumerate((("1 device", [n]), ("2 devices", [n // 2, n // 2]))):
        yy = 1.35 - row * 1.0
        ax.text(0.2, yy + 0.2, label, fontsize=8.5, va="center")
        x0 = 1.6
        start = 0
        for d, size in enumerate(split):
            for i in range(size):
                g = start + i
                ax.add_patch(
                    plt.Rectangle(
                        (x0 + g * 0.8 + d * 0.3, yy), 0.72, 0.4, fc=["#dde7f5", "#f5e3dd"][d], ec="black", lw=0.6
                    )
                )
                ax.text(x0 + g * 0.8 + d * 0.3 + 0.36, yy + 0.2, f"g={g}", ha="center", va="center", fontsize=7.5)
            start += size
    ax.text(
        8.6,
        0.85,
        "same g -> same u\n-> same count:\nbit-identical results\nfor any device count",
        fontsize=8.5,
        va="center",
    )
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    args.out.mkdir(parents=True, exist_ok=True)
    inversion_figure(args.out / "inversion.png")
    fused_pass_figure(args.out / "fused_pass.png")
    print(f"wrote {args.out / 'inversion.png'} and {args.out / 'fused_pass.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
