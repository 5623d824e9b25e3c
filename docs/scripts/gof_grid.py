"""Goodness-of-fit grid of ``poisson_add`` against the exact binomial pmf.

For every ``num_input`` in {1, 2, 37, 1000, 10^5, 10^7} and ``p`` in {1e-6, 1e-3, 0.02,
0.5, 0.97, 1} it draws ``--samples`` counts with ``poisson_add`` (weight 1 on a zero
float32 target, so the result *is* the count), and tests them against the exact
``Binomial(num_input, p)`` pmf (scipy's, independent of the plugin's own tables):

- chi-square on the support values, neighbouring bins pooled until each expects at
  least 5 samples;
- where pooling leaves a single bin (the distribution is almost a point mass at this
  sample size, e.g. ``num_input=1, p=1e-6``), an exact two-sided binomial test of the
  number of samples away from the mode;
- ``p = 1``: every count must equal ``num_input`` exactly (reported as "exact").

Fixed seeds, so the table is reproducible. Writes ``gof_grid.csv``, ``gof_grid.md`` and
``gof_grid.png`` to ``--out`` (default ``docs/_generated``). Runs in well under a minute.

    python docs/scripts/gof_grid.py [--samples 1000000] [--impl auto] [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats

NUM_INPUTS = (1, 2, 37, 1000, 10**5, 10**7)
PROBS = (1e-6, 1e-3, 0.02, 0.5, 0.97, 1.0)
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "_generated"


def pooled_chi_square(samples: np.ndarray, n: int, p: float, min_expected: float = 5.0):
    """Return ``(p_value, bins, test)`` of ``samples`` against ``Binomial(n, p)``."""
    size = samples.size
    lo = max(0, int(samples.min()) - 50)
    hi = min(n, int(samples.max()) + 50)
    ks = np.arange(lo, hi + 1)
    pmf = stats.binom.pmf(ks, n, p)
    if lo > 0:
        pmf[0] += stats.binom.cdf(lo - 1, n, p)
    pmf[-1] += stats.binom.sf(hi, n, p)
    observed = np.bincount(samples - lo, minlength=ks.size).astype(float)
    expected = pmf * size
    bins_e, bins_o = [], []
    acc_e = acc_o = 0.0
    for e, o in zip(expected, observed):
        acc_e += e
        acc_o += o
        if acc_e >= min_expected:
            bins_e.append(acc_e)
            bins_o.append(acc_o)
            acc_e = acc_o = 0.0
    if bins_e:
        bins_e[-1] += acc_e
        bins_o[-1] += acc_o
    if len(bins_e) >= 2:
        e = np.array(bins_e)
        o = np.array(bins_o)
        chi2 = float(np.sum((o - e) ** 2 / e))
        return float(stats.chi2.sf(chi2, len(e) - 1)), len(e), "chi-square"
    # Almost a point mass: exact binomial test of the samples away from the mode.
    mode = int(ks[np.argmax(pmf)])
    p_off = float(1.0 - stats.binom.pmf(mode, n, p))
    off = int(np.count_nonzero(samples != mode))
    if p_off <= 0.0:
        return (1.0 if off == 0 else 0.0), 1, "exact"
    return float(stats.binomtest(off, size, p_off).pvalue), 1, "binomial test"


def run_grid(samples: int, impl: str, seed: int = 20240601):
    import jax
    import jax.numpy as jnp

    from brainpy_poisson_plugin import poisson_add

    base = jax.random.key(seed)
    target = jnp.zeros((samples,), jnp.float32)
    rows = []
    for i, n in enumerate(NUM_INPUTS):
        for j, p in enumerate(PROBS):
            key = jax.random.fold_in(base, i * len(PROBS) + j)
            counts = np.asarray(poisson_add(target, key, n, p, 1.0, impl=impl)).astype(np.int64)
            if p == 1.0:
                ok = bool(np.all(counts == n))
                pval, bins, test = (1.0 if ok else 0.0), 1, "exact"
            else:
                pval, bins, test = pooled_chi_square(counts, n, p)
            rows.append(
                {
                    "num_input": n,
                    "p": p,
                    "samples": samples,
                    "test": test,
                    "bins": bins,
                    "p_value": pval,
                    "mean": float(counts.mean()),
                    "expected_mean": n * p,
                }
            )
    return rows


def write_outputs(rows, out: Path, impl_used: str, samples: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "gof_grid.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    def cell(r):
        if r["test"] == "exact":
            return "exact" if r["p_value"] == 1.0 else "**FAIL**"
        mark = "" if r["test"] == "chi-square" else "&dagger;"
        return f"{r['p_value']:.3f}{mark}"

    lines = ["| num_input \\ p | " + " | ".join(f"{p:g}" for p in PROBS) + " |", "|---:|" + "---:|" * len(PROBS)]
    for n in NUM_INPUTS:
        cells = [cell(r) for r in rows if r["num_input"] == n]
        lines.append(f"| {n:,} | " + " | ".join(cells) + " |")
    tested = [r["p_value"] for r in rows if r["test"] != "exact"]
    lines += [
        "",
        f"{samples:,} draws per cell, implementation `{impl_used}`. Entries are p-values of the "
        "pooled chi-square test against the exact binomial pmf; &dagger; marks cells where the "
        "distribution is almost a point mass at this sample size and an exact binomial test of "
        'the draws away from the mode is used instead; "exact" means every draw equalled '
        f"`num_input` (p = 1). Range of the p-values: {min(tested):.3f} to {max(tested):.3f}.",
    ]
    (out / "gof_grid.md").write_text("\n".join(lines) + "\n", encoding="utf-8")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.full((len(NUM_INPUTS), len(PROBS)), np.nan)
    for r in rows:
        grid[NUM_INPUTS.index(r["num_input"]), PROBS.index(r["p"])] = r["p_value"]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    im = ax.imshow(grid, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    for r in rows:
        y, x = NUM_INPUTS.index(r["num_input"]), PROBS.index(r["p"])
        text = "exact" if r["test"] == "exact" else f"{r['p_value']:.2f}"
        ax.text(x, y, text, ha="center", va="center", fontsize=8, color="white" if r["p_value"] < 0.5 else "black")
    ax.set_xticks(range(len(PROBS)), [f"{p:g}" for p in PROBS])
    ax.set_yticks(range(len(NUM_INPUTS)), [f"{n:,}" for n in NUM_INPUTS])
    ax.set_xlabel("p (spike probability per input per step)")
    ax.set_ylabel("num_input")
    ax.set_title(f"Goodness of fit vs the exact binomial pmf (p-values, {samples:,} draws/cell)")
    fig.colorbar(im, ax=ax, label="p-value")
    fig.tight_layout()
    fig.savefig(out / "gof_grid.png", dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=1_000_000, help="draws per cell (default 10^6)")
    parser.add_argument("--impl", default="auto", choices=("auto", "fused", "reference"))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    rows = run_grid(args.samples, args.impl)
    impl_used = args.impl
    if impl_used == "auto":
        try:
            from brainpy_poisson_plugin.ops import native

            impl_used = "auto (fused)" if native.available("cpu") else "auto (reference)"
        except ImportError:
            impl_used = "auto (reference)"
    write_outputs(rows, args.out, impl_used, args.samples)
    tested = [r["p_value"] for r in rows if r["test"] != "exact"]
    print((args.out / "gof_grid.md").read_text())
    print(
        f"p-values from {min(tested):.4f} to {max(tested):.4f}; "
        f"{sum(v < 0.01 for v in tested)} of {len(tested)} below 0.01; {time.perf_counter() - t0:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
