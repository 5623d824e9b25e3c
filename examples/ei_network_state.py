"""The E/I network of ``ei_network.py`` written with ``brainpy.state``: host vs plugin Poisson input.

4,000 conductance-based LIF neurons with refractoriness (3,200 excitatory, 800
inhibitory; ``brainpy.state.LIFRef`` in one population, ``brainpy.state.AlignPostProj``
projections with exponential conductances ``Expon`` and ``COBA`` outputs, 2% random
connectivity through ``brainstate.nn.EventFixedProb``). Every neuron also receives 1,000
independent Poisson inputs at 5 Hz onto its excitatory conductance through one
``brainpy.state.PoissonInput``. Everything carries brainunit units (mV, ms, mS, Hz).
The neurons start near rest, so the activity is driven by the background input.

The same network (same ``brainstate.random.seed``: same connectivity, same initial
state) is run twice:

1. with the host's own ``brainpy.state.PoissonInput`` (read from the module that
   defines it, so it is the host's even while the plugin's swap is active), and
2. with the plugin's (:class:`brainpy_poisson_plugin.host.state_inputs.PoissonInput`,
   ``impl="auto"``), which is what ``brainpy.state.PoissonInput`` resolves to once the
   plugin is installed.

For each run it prints the wall time per simulated second (compilation excluded: the
first chunk compiles and doubles as the discarded transient) and the mean E and I
firing rates, and writes one PNG with a raster and the per-neuron rate histogram.

    python examples/ei_network_state.py              # 1 s of network time per run
    python examples/ei_network_state.py --quick      # a smoke test
    python examples/ei_network_state.py --duration 5000 --out /tmp/ei_state.png
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import brainpy
import ei_network  # sibling example: the figure, and brainevent without numba
import numpy as np
from ei_network import use_pure_jax_sparse_kernels

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "output" / "ei_network_state.png"

NE, NI = 3200, 800  # 80/20 excitatory/inhibitory
NUM_INPUT = 1000  # Poisson inputs per neuron
FREQ_HZ = 5.0  # each input
W_INPUT_MS = 0.1  # weight of one input spike on the excitatory conductance (mS)
DT_MS = 0.1
CHUNK_MS = 100.0  # the simulation runs in equal chunks, so it compiles once
RASTER_E, RASTER_I = 400, 100  # neurons shown in the rasters


def has_state_api() -> bool:
    """Whether this BrainPy has ``brainpy.state`` (BrainPy 2.8 and later)."""
    from brainpy_poisson_plugin.host.compat import has_state_api as _has

    return _has()


def build_network(poisson_cls, num_exc: int = NE, num_inh: int = NI, **poisson_kwargs):
    """The COBA E/I network as a ``brainstate.nn.Module`` driven by ``poisson_cls``.

    ``poisson_cls`` is the host's or the plugin's ``brainpy.state.PoissonInput``; the
    network's ``step(i)`` advances one ``dt`` and returns the spikes of all neurons.
    """
    import brainstate
    import braintools
    import brainunit as u

    num = num_exc + num_inh

    class EINet(brainstate.nn.Module):
        def __init__(self):
            super().__init__()
            # R = 1 kOhm with conductances in mS: the same numbers as BrainPy's classic
            # COBA network (ei_network.py), where they carry no units.
            self.N = brainpy.state.LIFRef(
                num,
                R=1.0 * u.kohm,
                V_rest=-60.0 * u.mV,
                V_th=-50.0 * u.mV,
                V_reset=-60.0 * u.mV,
                tau=20.0 * u.ms,
                tau_ref=5.0 * u.ms,
                V_initializer=braintools.init.Normal(-60.0 * u.mV, 2.0 * u.mV),
            )
            self.E = brainpy.state.AlignPostProj(
                comm=brainstate.nn.EventFixedProb(num_exc, num, conn_num=0.02, conn_weight=0.6 * u.mS),
                syn=brainpy.state.Expon.desc(num, tau=5.0 * u.ms),
                out=brainpy.state.COBA.desc(E=0.0 * u.mV),
                post=self.N,
            )
            self.I = brainpy.state.AlignPostProj(
                comm=brainstate.nn.EventFixedProb(num_inh, num, conn_num=0.02, conn_weight=6.7 * u.mS),
                syn=brainpy.state.Expon.desc(num, tau=10.0 * u.ms),
                out=brainpy.state.COBA.desc(E=-80.0 * u.mV),
                post=self.N,
            )
            # Background: 1,000 Poisson inputs per neuron onto the excitatory conductance.
            self.bg = poisson_cls(
                self.E.syn.prefetch("g"),
                None,
                NUM_INPUT,
                FREQ_HZ * u.Hz,
                W_INPUT_MS * u.mS,
                **poisson_kwargs,
            )

        def step(self, i):
            with brainstate.environ.context(i=i, t=i * brainstate.environ.get_dt()):
                spikes = self.N.get_spike() != 0.0
                self.E(spikes[:num_exc])
                self.I(spikes[num_exc:])
                self.bg()
                self.N()
                return self.N.get_spike() != 0.0

    return EINet()


def simulate(
    label: str,
    poisson_cls,
    duration_ms: float,
    seed: int,
    *,
    num_exc: int = NE,
    num_inh: int = NI,
    **poisson_kwargs,
) -> dict:
    """Build the network with ``poisson_cls``, run a warm-up chunk and ``duration_ms``; return spikes and rates."""
    import brainstate
    import brainunit as u
    import jax.numpy as jnp

    steps = round(CHUNK_MS / DT_MS)
    with brainstate.environ.context(dt=DT_MS * u.ms):
        brainstate.random.seed(seed)
        net = build_network(poisson_cls, num_exc, num_inh, **poisson_kwargs)
        brainstate.nn.init_all_states(net)

        @brainstate.transform.jit
        def run_chunk(start):
            return brainstate.transform.for_loop(net.step, start + jnp.arange(steps))

        t0 = time.perf_counter()
        np.asarray(run_chunk(0))  # compiles; also the discarded initial transient
        warmup_s = time.perf_counter() - t0

        n_chunks = max(1, round(duration_ms / CHUNK_MS))
        chunks = []
        t0 = time.perf_counter()
        for k in range(1, n_chunks + 1):
            chunks.append(np.asarray(run_chunk(k * steps), dtype=bool))
        run_s = time.perf_counter() - t0
    spikes = np.concatenate(chunks)
    simulated_s = n_chunks * CHUNK_MS / 1e3
    return {
        "label": label,
        "spikes_e": spikes[:, :num_exc],
        "spikes_i": spikes[:, num_exc:],
        "rates_e": spikes[:, :num_exc].sum(0) / simulated_s,
        "rates_i": spikes[:, num_exc:].sum(0) / simulated_s,
        "warmup_s": warmup_s,
        "simulated_s": simulated_s,
        "wall_per_sim_s": run_s / simulated_s,
    }


def plot(results: list[dict], out: Path, raster_ms: float) -> Path:
    """The same figure as the classic demo's (one raster and rate histogram per run)."""
    return ei_network.plot(results, out, raster_ms, api="brainpy.state ")


def main(argv: list[str] | None = None) -> int:
    """Run host and plugin side by side; print rates and wall time; write the PNG."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--duration",
        type=float,
        default=1000.0,
        help="simulated ms per run after the 100 ms warm-up (default 1000)",
    )
    parser.add_argument("--quick", action="store_true", help="200 ms per run (a smoke test)")
    parser.add_argument("--seed", type=int, default=2024, help="brainstate.random.seed for both runs")
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"PNG path (default {DEFAULT_OUT})",
    )
    args = parser.parse_args(argv)
    duration = 200.0 if args.quick else args.duration
    if duration < CHUNK_MS:
        parser.error(f"--duration must be at least {CHUNK_MS:g} ms, got {duration:g}")
    if not has_state_api():
        print(f"BrainPy {brainpy.__version__} has no brainpy.state (it needs BrainPy 2.8 or later): nothing to run")
        return 0

    import jax

    use_pure_jax_sparse_kernels()
    from brainpy_poisson_plugin.host.compat import original_state_poisson_input_class
    from brainpy_poisson_plugin.host.state_inputs import PoissonInput

    print(f"BrainPy {brainpy.__version__}, JAX backend {jax.default_backend()}, {os.cpu_count()} CPU cores")
    print(
        f"brainpy.state: {NE + NI} neurons, {NUM_INPUT} Poisson inputs x {FREQ_HZ:g} Hz each, dt={DT_MS} ms, "
        f"{duration:g} ms timed per run (+{CHUNK_MS:g} ms warm-up)\n"
    )
    runs = [
        ("host brainpy.state.PoissonInput", original_state_poisson_input_class(), {}),
        (
            "plugin brainpy.state.PoissonInput (impl='auto')",
            PoissonInput,
            {"impl": "auto"},
        ),
    ]
    results = []
    for label, cls, kwargs in runs:
        print(f"running: {label} ...", flush=True)
        results.append(simulate(label, cls, duration, args.seed, **kwargs))

    print()
    header = f"{'run':<50} {'wall s / sim s':>14} {'compile+warm-up s':>18} {'E rate Hz':>10} {'I rate Hz':>10}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r['label']:<50} {r['wall_per_sim_s']:>14.3f} {r['warmup_s']:>18.2f} "
            f"{r['rates_e'].mean():>10.2f} {r['rates_i'].mean():>10.2f}"
        )
    host, plugin = results
    print(f"\nspeed-up of the whole simulation: {host['wall_per_sim_s'] / plugin['wall_per_sim_s']:.2f}x")
    out = plot(results, args.out, raster_ms=min(300.0, duration))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
