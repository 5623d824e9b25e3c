"""The benchmark workloads W1-W8 (DESIGN section 6). Plain data, no imports of JAX."""

from __future__ import annotations

import dataclasses
import math

__all__ = ["Workload", "WORKLOADS", "get_workloads", "default_steps"]


@dataclasses.dataclass(frozen=True)
class Workload:
    """One benchmark configuration.

    Attributes:
        id: ``"W1"`` .. ``"W5"``.
        shape: the target's shape, ``(neurons,)`` or ``(batch, neurons)`` (batching mode).
        num_input: inputs per neuron.
        freq: rate of each input in Hz.
        dt: step in ms.
        batching: run the target in ``bm.BatchingMode``.
        api: ``"classic"`` (``bp.dyn.PoissonInput``) or ``"state"`` (``brainpy.state.PoissonInput``, W8).
        rate: ``"constant"`` (``freq`` every step); ``"modulated"`` (W6: ``freq * (1 +
            0.5 sin(2 pi 5 Hz t))``, a new rate every step); ``"sweep"`` (W7: one
            ``vmap`` over ``shape[0]`` rates from ``freq`` to ``freq_max``); or
            ``"sweep-calls"`` (the same rates as ``shape[0]`` separate constant-rate
            inputs, the baseline of the sweep).
        freq_max: the highest rate of a sweep.
        baseline: the id of the constant-rate workload this one is compared with.
    """

    id: str
    shape: tuple[int, ...]
    num_input: int
    freq: float
    dt: float = 0.1
    batching: bool = False
    api: str = "classic"
    rate: str = "constant"
    freq_max: float | None = None
    baseline: str | None = None

    @property
    def elements(self) -> int:
        """Elements updated per step."""
        return math.prod(self.shape)

    @property
    def p(self) -> float:
        """Spike probability per input per step (the mean rate's, for W6/W7; for ``brainpy.state``
        workloads the host's ``-expm1(-freq dt)``)."""
        if self.api == "state":
            return -math.expm1(-self.mean_freq * self.dt / 1e3)
        return self.mean_freq * self.dt / 1e3

    @property
    def mean_freq(self) -> float:
        """The rate averaged over time (W6) or over the sweep (W7)."""
        if self.rate in ("sweep", "sweep-calls") and self.freq_max is not None:
            return 0.5 * (self.freq + self.freq_max)
        return self.freq

    def sweep_rates(self) -> list[float]:
        """The ``shape[0]`` rates of a sweep, evenly spaced from ``freq`` to ``freq_max``."""
        count = self.shape[0]
        top = self.freq if self.freq_max is None else self.freq_max
        return [self.freq + (top - self.freq) * i / max(count - 1, 1) for i in range(count)]

    @property
    def mean_count(self) -> float:
        """Mean input count per element per step."""
        return self.num_input * self.p

    def describe(self) -> str:
        """One line for tables and logs: id, shape, num_input, rate and dt."""
        shape = " x ".join(f"{s:,}" for s in self.shape)
        rate = {
            "modulated": f"{self.freq:g} (1 + 0.5 sin(2 pi 5 Hz t)) Hz",
            "sweep": f"vmap over {self.shape[0]} rates {self.freq:g}-{self.freq_max:g} Hz",
            "sweep-calls": f"{self.shape[0]} constant-rate calls, {self.freq:g}-{self.freq_max:g} Hz",
        }.get(self.rate, f"{self.freq:g} Hz")
        return f"{self.id}: {shape}, num_input={self.num_input:,}, {rate}, dt={self.dt:g} ms"


def _table(platform: str, quick: bool) -> dict[str, Workload]:
    w5 = 10**8 if platform == "gpu" else 10**7
    if quick:  # the same rates, small targets: a smoke test, not a measurement
        table = {
            "W1": Workload("W1", (10_000,), 1_000, 10.0),
            "W2": Workload("W2", (10_000,), 10_000, 20.0),
            "W3": Workload("W3", (50_000,), 100, 5.0),
            "W4": Workload("W4", (8, 2_000), 1_000, 10.0, batching=True),
            "W5": Workload("W5", (100_000,), 1_000, 10.0),
        }
    else:
        table = {
            "W1": Workload("W1", (100_000,), 1_000, 10.0),
            "W2": Workload("W2", (100_000,), 10_000, 20.0),
            "W3": Workload("W3", (1_000_000,), 100, 5.0),
            "W4": Workload("W4", (64, 10_000), 1_000, 10.0, batching=True),
            "W5": Workload("W5", (w5,), 1_000, 10.0),
        }
    table.update(_time_varying_rates(quick))
    table["W8"] = Workload("W8", (10_000,) if quick else (100_000,), 1_000, 10.0, api="state")
    return table


def _time_varying_rates(quick: bool) -> dict[str, Workload]:
    """W6 (rate modulated every step) and W7 (vmap over 16 rates), each with the
    constant-rate workload it is compared with (``W6-CONST``, ``W7-CALLS``)."""
    neurons, per_rate = (10_000, 2_000) if quick else (100_000, 10_000)
    return {
        "W6": Workload("W6", (neurons,), 1_000, 10.0, rate="modulated", baseline="W6-CONST"),
        "W6-CONST": Workload("W6-CONST", (neurons,), 1_000, 10.0),
        "W7": Workload("W7", (16, per_rate), 1_000, 1.0, rate="sweep", freq_max=40.0, baseline="W7-CALLS"),
        "W7-CALLS": Workload("W7-CALLS", (16, per_rate), 1_000, 1.0, rate="sweep-calls", freq_max=40.0),
    }


#: The full-size workloads on a CPU.
WORKLOADS = _table("cpu", quick=False)


def get_workloads(ids: list[str] | None, *, platform: str = "cpu", quick: bool = False) -> list[Workload]:
    """The workloads named by ``ids`` (all when ``None``), sized for ``platform``.

    Raises ``ValueError`` naming an unknown id.
    """
    table = _table(platform, quick)
    if ids is None:
        return list(table.values())
    out = []
    for raw in ids:
        key = raw.strip().upper()
        if key not in table:
            raise ValueError(f"unknown workload {raw!r}; choose from {', '.join(table)}")
        out.append(table[key])
    return out


def default_steps(workload: Workload, quick: bool) -> int:
    """Steps per timed call: about 10^7 element-steps, 10 to 200 (``quick``: 10^6, 3 to 20).

    At least 10 steps per call in a real run: each jitted call also moves the target in
    and out (for W5 a 40 MB buffer), a fixed cost that must not be counted as sampling.
    """
    if quick:
        return int(min(20, max(3, 10**6 // workload.elements)))
    return int(min(200, max(10, 10**7 // workload.elements)))
