"""Weak scaling over 1, 2 and 4 forced CPU devices: ``brainpy-poisson bench --scaling``.

Each device holds the same number of neurons (W5 per device: 10^7 neurons, 1,000 inputs
at 10 Hz, dt 0.1 ms; 10^5 with ``--quick``), the target is sharded over a 1-D mesh, and
``poisson_add`` runs ``steps`` steps in one jitted ``fori_loop`` (automatic sharding). The
device count of a CPU backend is fixed when JAX starts, so each count runs in a fresh
process of this module (``--worker``) with ``XLA_FLAGS=--xla_force_host_platform_device_count``.

For each count it reports the wall time per step, ns per neuron per step (all neurons)
and per device-neuron (the per-device share), and the collectives (all-gather,
all-reduce, ...) in the compiled program: there are none, so the sharded program adds no
communication. Forced CPU devices share the machine's cores: with more devices than
cores the wall time per step grows with the device count while ns per neuron per step
stays flat; on real devices (one per GPU or host) the wall time per step stays flat.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import report, timing

__all__ = ["COLLECTIVES", "DEVICE_COUNTS", "format_table", "run", "worker"]

DEVICE_COUNTS = (1, 2, 4)
#: HLO op names of cross-device communication.
COLLECTIVES = ("all-gather", "all-reduce", "all-to-all", "collective-permute", "reduce-scatter", "collective-broadcast")
NUM_INPUT, FREQ_HZ, DT_MS = 1_000, 10.0, 0.1


def _per_device(quick: bool) -> int:
    return 100_000 if quick else 10_000_000


def worker(per_device: int, steps: int, repeats: int) -> dict[str, Any]:
    """Time ``steps`` steps on ``per_device`` neurons per device, over all devices of this
    process (a 1-D mesh), and list the collectives of the compiled program."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    from ..ops.poisson_add import poisson_add

    devices = jax.devices()
    n = len(devices)
    sharding = NamedSharding(Mesh(np.array(devices), ("x",)), PartitionSpec("x"))
    p = FREQ_HZ * DT_MS / 1e3
    key = jax.random.key(0)

    def steps_of(v):
        def one(i, v):
            return poisson_add(v, jax.random.fold_in(key, i), NUM_INPUT, p, 1.0)

        return jax.lax.fori_loop(0, steps, one, v)

    f = jax.jit(steps_of, in_shardings=sharding, out_shardings=sharding, donate_argnums=0)
    state = {"v": jax.device_put(jnp.zeros(n * per_device, jnp.float32), sharding)}
    hlo = f.lower(state["v"]).compile().as_text() or ""

    def call():
        state["v"] = f(state["v"])
        return state["v"]

    m = timing.measure(call, steps=steps, elements=n * per_device, repeats=repeats)
    ns = m.summary()
    return {
        "devices": n,
        "neurons_per_device": per_device,
        "neurons": n * per_device,
        "steps": steps,
        "repeats": repeats,
        "compile_s": m.compile_s,
        "ms_per_step": ns["median"] * n * per_device / 1e6,
        "ns_per_neuron_step": ns,
        "ns_per_device_neuron_step": ns["median"] * n,
        "collectives": {op: hlo.count(f" {op}(") + hlo.count(f" {op}-start(") for op in COLLECTIVES},
        "custom_call": "bpp_poisson_add" in hlo,
    }


def _run_count(count: int, per_device: int, steps: int, repeats: int, timeout_s: float) -> dict[str, Any]:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={count}", JAX_PLATFORMS="cpu")
    cmd = [
        sys.executable,
        "-m",
        "brainpy_poisson_plugin.bench.scaling",
        "--worker",
        str(per_device),
        str(steps),
        str(repeats),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s, check=False)
    if proc.returncode != 0:
        return {"devices": count, "status": "error", "reason": proc.stderr.strip()[-2000:]}
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row["status"] = "ok"
    return row


def format_table(rows: list[dict[str, Any]]) -> str:
    """The scaling rows as a plain-text table."""
    head = (
        f"{'devices':>7} {'neurons':>11} {'ms/step':>9} {'ns/neuron/step':>15} {'ns/dev-neuron/step':>19} collectives"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        if r["status"] != "ok":
            lines.append(f"{r['devices']:>7} error: {r['reason'].splitlines()[-1] if r['reason'] else '?'}")
            continue
        total = sum(r["collectives"].values())
        lines.append(
            f"{r['devices']:>7} {r['neurons']:>11} {r['ms_per_step']:>9.2f} {r['ns_per_neuron_step']['median']:>15.3f} "
            f"{r['ns_per_device_neuron_step']:>19.3f} {total}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """``bench --scaling``: one fresh process per device count; print the table and write
    ``<out>/scaling.json`` (``scaling-quick.json`` with ``--quick``). Returns 0, or 1 when a
    count failed or its program has a collective."""
    per_device = _per_device(args.quick)
    steps = args.steps or (5 if args.quick else 10)
    repeats = args.repeats or (3 if args.quick else 5)
    rows = []
    for count in DEVICE_COUNTS:
        print(f"[scaling] {count} device(s), {per_device} neurons each", file=sys.stderr, flush=True)
        rows.append(_run_count(count, per_device, steps, repeats, timeout_s=1800))
    print(format_table(rows))
    doc = {
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "command": "brainpy-poisson bench --scaling" + (" --quick" if args.quick else ""),
        "workload": {"num_input": NUM_INPUT, "freq_hz": FREQ_HZ, "dt_ms": DT_MS, "neurons_per_device": per_device},
        "machine": timing.machine_info(),
        "results": rows,
    }
    out_dir = Path(args.out)
    path = report.write_json(out_dir / ("scaling-quick.json" if args.quick else "scaling.json"), doc)
    print(f"\nwrote {path}")
    bad = [r for r in rows if r["status"] != "ok" or any(r["collectives"].values())]
    return 1 if bad else 0


def _main(argv: Sequence[str]) -> int:
    if argv and argv[0] == "--worker":
        per_device, steps, repeats = (int(a) for a in argv[1:4])
        print(json.dumps(worker(per_device, steps, repeats)))
        return 0
    from .runner import main

    return main(["--scaling", *argv])


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
