"""E/I network driven by Poisson background input: BrainPy's sampler vs the plugin's.

4,000 conductance-based leaky integrate-and-fire neurons (3,200 excitatory, 800
inhibitory; BrainPy's COBA benchmark network: ``bp.dyn.LifRef`` neurons,
``bp.dyn.ProjAlignPostMg2`` projections with exponential conductances
``bp.dyn.Expon`` and ``bp.dyn.COBA`` outputs, 2% random connectivity). Every neuron
also receives 1,000 independent Poisson inputs at a few Hz onto its excitatory
conductance, through one ``PoissonInput`` per population. The neurons start at rest, so
the activity is driven by the background input: without it the network stays silent.

The same network (same seed: same connectivity, same initial state) is run twice:

1. with BrainPy's own ``PoissonInput`` (the host's class, even while the plugin's
   automatic swap is active), and
2. with the plugin's ``brainpy_poisson_plugin.PoissonInput`` (``impl="auto"``: the
   fused kernel where it is built, else the exact pure-JAX reference).

For each run it prints the wall time per simulated second (compilation excluded: the
first chunk of the simulation compiles and doubles as the discarded transient) and the
mean E and I firing rates, and writes one PNG with a raster and a histogram of the
per-neuron rates of each run.

    python examples/ei_network.py              # 1 s of network time per run
    python examples/ei_network.py --quick      # a few seconds, for a smoke test
    python examples/ei_network.py --duration 5000 --out /tmp/ei.png
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import brainpy as bp
import brainpy.math as bm
import numpy as np

from brainpy_poisson_plugin import PoissonInput
from brainpy_poisson_plugin.host.compat import original_poisson_input_class

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "output" / "ei_network.png"

NE, NI = 3200, 800  # 80/20 excitatory/inhibitory
NUM_INPUT = 1000  # Poisson inputs per neuron
FREQ = 5.0  # Hz, each input
W_INPUT = 0.1  # weight of one input spike on the excitatory conductance (nS)
DT = 0.1  # ms
CHUNK = 100.0  # ms: the simulation runs in equal chunks so it compiles once
RASTER_E, RASTER_I = 400, 100  # neurons shown in the rasters


class EINet(bp.DynSysGroup):
    """BrainPy's COBA E/I network with Poisson background input of a given class."""

    def __init__(self, poisson_cls, **poisson_kwargs):
        super().__init__()
        lif = dict(
            V_rest=-60.0, V_th=-50.0, V_reset=-60.0, tau=20.0, tau_ref=5.0, V_initializer=bp.init.Normal(-60.0, 2.0)
        )
        self.E = bp.dyn.LifRef(NE, **lif)
        self.I = bp.dyn.LifRef(NI, **lif)

        def proj(pre, post, n_pre, n_post, weight, tau, reversal):
            return bp.dyn.ProjAlignPostMg2(
                pre=pre,
                delay=0.1,
                comm=bp.dnn.EventCSRLinear(bp.conn.FixedProb(0.02, pre=n_pre, post=n_post), weight),
                syn=bp.dyn.Expon.desc(size=n_post, tau=tau),
                out=bp.dyn.COBA.desc(E=reversal),
                post=post,
            )

        self.E2E = proj(self.E, self.E, NE, NE, 0.6, 5.0, 0.0)
        self.E2I = proj(self.E, self.I, NE, NI, 0.6, 5.0, 0.0)
        self.I2E = proj(self.I, self.E, NI, NE, 6.7, 10.0, -80.0)
        self.I2I = proj(self.I, self.I, NI, NI, 6.7, 10.0, -80.0)
        # Background: 1,000 Poisson inputs per neuron onto the excitatory conductance
        # (the same Expon variable the recurrent excitation drives).
        self.bg_E = poisson_cls(self.E2E.refs["syn"].g, NUM_INPUT, FREQ, W_INPUT, **poisson_kwargs)
        self.bg_I = poisson_cls(self.E2I.refs["syn"].g, NUM_INPUT, FREQ, W_INPUT, **poisson_kwargs)
        # DynSysGroup's own update runs projections (the PoissonInputs included) before
        # the neurons, exactly as in a user's model.


def use_pure_jax_sparse_kernels() -> None:
    """Let BrainPy's sparse (CSR) operators run without numba.

    On BrainPy 2.8 the event-driven CSR products come from ``brainevent``, whose CPU
    default is a numba kernel; numba is not a dependency here, so when it is missing
    select brainevent's pure-JAX backend instead.
    """
    try:
        import numba  # noqa: F401

        return
    except ImportError:
        pass
    try:
        from brainevent import config as be_config
    except ImportError:  # older hosts: BrainPy's own operators
        return
    try:
        be_config.set_backend("cpu", "jax_raw")
    except Exception as exc:
        print(f"note: could not select brainevent's jax_raw backend ({exc})")


def fused_available() -> bool:
    """Whether the fused CPU/GPU kernel is built and loaded for JAX's default backend."""
    try:
        import jax

        from brainpy_poisson_plugin.ops import native

        return bool(native.available("cuda" if jax.default_backend() == "gpu" else "cpu"))
    except ImportError:
        return False
    except Exception:
        return False


def simulate(label: str, poisson_cls, duration: float, seed: int, **poisson_kwargs) -> dict:
    """Build the network with ``poisson_cls`` and run it; return spikes, rates, timings."""
    bm.random.seed(seed)
    np.random.seed(seed)
    net = EINet(poisson_cls, **poisson_kwargs)
    runner = bp.DSRunner(net, monitors={"E": net.E.spike, "I": net.I.spike}, dt=DT, progress_bar=False)

    t0 = time.perf_counter()
    runner.run(CHUNK)  # compiles; also the discarded initial transient
    warmup_s = time.perf_counter() - t0

    n_chunks = max(1, int(round(duration / CHUNK)))
    spikes_e, spikes_i = [], []
    t0 = time.perf_counter()
    for _ in range(n_chunks):
        runner.run(CHUNK)  # same length: the compiled loop is reused
        spikes_e.append(np.asarray(runner.mon["E"], dtype=bool))
        spikes_i.append(np.asarray(runner.mon["I"], dtype=bool))
    run_s = time.perf_counter() - t0
    simulated_s = n_chunks * CHUNK / 1e3

    spikes_e = np.concatenate(spikes_e)
    spikes_i = np.concatenate(spikes_i)
    rates_e = spikes_e.sum(0) / simulated_s
    rates_i = spikes_i.sum(0) / simulated_s
    return {
        "label": label,
        "spikes_e": spikes_e,
        "spikes_i": spikes_i,
        "rates_e": rates_e,
        "rates_i": rates_i,
        "warmup_s": warmup_s,
        "simulated_s": simulated_s,
        "wall_per_sim_s": run_s / simulated_s,
    }


def plot(results: list[dict], out: Path, raster_ms: float, api: str = "") -> Path:
    """One figure: per run, a raster (first ``raster_ms`` of the timed part) and the
    histogram of per-neuron rates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        2, len(results), figsize=(6 * len(results), 7), squeeze=False, gridspec_kw={"height_ratios": [3, 2]}
    )
    all_rates = np.concatenate([np.concatenate([r["rates_e"], r["rates_i"]]) for r in results])
    bins = np.linspace(0.0, max(1.0, np.percentile(all_rates, 99.5)) * 1.05, 41)
    for col, r in enumerate(results):
        ax = axes[0, col]
        n_steps = min(int(raster_ms / DT), r["spikes_e"].shape[0])
        # A readable subset: the first RASTER_E excitatory and RASTER_I inhibitory cells.
        for spikes, count, offset, color in (
            (r["spikes_e"], RASTER_E, 0, "tab:red"),
            (r["spikes_i"], RASTER_I, RASTER_E, "tab:blue"),
        ):
            t_idx, n_idx = np.nonzero(spikes[:n_steps, :count])
            ax.scatter(t_idx * DT, n_idx + offset, s=1.5, c=color, marker=".", linewidths=0)
        ax.set_xlim(0, n_steps * DT)
        ax.set_ylim(0, RASTER_E + RASTER_I)
        ax.set_xlabel("time (ms)")
        ax.set_ylabel(f"neuron ({RASTER_E} E red, {RASTER_I} I blue)")
        ax.set_title(
            f"{r['label']}\nE {r['rates_e'].mean():.1f} Hz, I {r['rates_i'].mean():.1f} Hz, "
            f"{r['wall_per_sim_s']:.2f} s wall / s simulated"
        )
        ax = axes[1, col]
        ax.hist(r["rates_e"], bins=bins, color="tab:red", alpha=0.6, label="E")
        ax.hist(r["rates_i"], bins=bins, color="tab:blue", alpha=0.6, label="I")
        ax.set_xlabel("firing rate (Hz)")
        ax.set_ylabel("neurons")
        ax.legend()
    fig.suptitle(f"{api}COBA E/I network, {NE + NI:,} neurons, {NUM_INPUT:,} Poisson inputs at {FREQ:g} Hz each")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--duration", type=float, default=1000.0, help="simulated ms per run after the 100 ms warm-up (default 1000)"
    )
    parser.add_argument("--quick", action="store_true", help="200 ms per run (a smoke test)")
    parser.add_argument("--seed", type=int, default=2024, help="bm.random.seed for both runs")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"PNG path (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    duration = 200.0 if args.quick else args.duration
    if duration < CHUNK:
        parser.error(f"--duration must be at least {CHUNK:g} ms, got {duration:g}")

    use_pure_jax_sparse_kernels()
    host_cls = original_poisson_input_class()
    plugin_impl = "fused" if fused_available() else "reference"
    print(f"BrainPy {bp.__version__}, JAX backend {bm.get_platform()}, {os.cpu_count()} CPU cores")
    print(
        f"{NE + NI} neurons, {NUM_INPUT} Poisson inputs x {FREQ:g} Hz each, dt={DT} ms, "
        f"{duration:g} ms timed per run (+{CHUNK:g} ms warm-up)\n"
    )

    runs = [
        ("BrainPy PoissonInput (host)", host_cls, {}),
        (f"plugin PoissonInput (impl='auto' -> {plugin_impl})", PoissonInput, {"impl": "auto"}),
    ]
    results = []
    for label, cls, kwargs in runs:
        print(f"running: {label} ...", flush=True)
        r = simulate(label, cls, duration, args.seed, **kwargs)
        results.append(r)

    print()
    header = f"{'run':<48} {'wall s / sim s':>14} {'compile+warm-up s':>18} {'E rate Hz':>10} {'I rate Hz':>10}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r['label']:<48} {r['wall_per_sim_s']:>14.3f} {r['warmup_s']:>18.2f} "
            f"{r['rates_e'].mean():>10.2f} {r['rates_i'].mean():>10.2f}"
        )
    host, plugin = results
    print(f"\nspeed-up of the whole simulation: {host['wall_per_sim_s'] / plugin['wall_per_sim_s']:.2f}x")
    out = plot(results, args.out, raster_ms=min(300.0, duration))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
