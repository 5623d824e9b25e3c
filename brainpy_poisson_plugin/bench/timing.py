"""Pure timing helpers: no BrainPy, no JAX import at module level.

A benchmark case is a zero-argument callable that runs ``K`` simulation steps and
returns something to wait on (an array, or anything with ``block_until_ready``). The
first call compiles; :func:`measure` times it apart and then times several further
calls, each waited on, and summarises them.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["Measurement", "block", "measure", "summarize", "machine_info"]


def block(result: Any) -> Any:
    """Wait until every array in ``result`` (a pytree or a single array) is computed."""
    try:
        import jax

        return jax.block_until_ready(result)
    except ImportError:  # pragma: no cover - JAX is a dependency
        return result


@dataclasses.dataclass(frozen=True)
class Measurement:
    """Timings of one benchmark case.

    Attributes:
        compile_s: seconds of the first call (trace + compile + one run of the steps)
            minus the median of the later calls: the one-off cost.
        runs_s: seconds of each later call (each runs ``steps`` steps).
        steps: steps per call.
        elements: elements updated per step (neurons, times the batch size).
    """

    compile_s: float
    runs_s: tuple[float, ...]
    steps: int
    elements: int

    def ns_per_element_step(self) -> list[float]:
        """Each run as nanoseconds per element per step."""
        scale = 1e9 / (self.steps * max(self.elements, 1))
        return [t * scale for t in self.runs_s]

    def summary(self) -> dict[str, float]:
        """Median, min, max, quartiles of ns per element per step (see :func:`summarize`)."""
        return summarize(self.ns_per_element_step())


def summarize(values: Sequence[float]) -> dict[str, float]:
    """Return ``median``, ``min``, ``max``, ``q1``, ``q3`` and ``iqr`` of ``values``."""
    vals = sorted(float(v) for v in values)
    if not vals:
        raise ValueError("summarize needs at least one value")
    if len(vals) >= 2:
        q1, _, q3 = statistics.quantiles(vals, n=4, method="inclusive")
    else:
        q1 = q3 = vals[0]
    return {
        "median": statistics.median(vals),
        "min": vals[0],
        "max": vals[-1],
        "q1": q1,
        "q3": q3,
        "iqr": q3 - q1,
    }


def measure(
    fn: Callable[[], Any],
    *,
    steps: int,
    elements: int,
    repeats: int,
    clock: Callable[[], float] = time.perf_counter,
) -> Measurement:
    """Time ``fn`` (which runs ``steps`` steps over ``elements`` elements per call).

    The first call is the compile call; then ``repeats`` calls are timed one by one,
    each until its result is ready.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got repeats={repeats}")
    t0 = clock()
    block(fn())
    first = clock() - t0
    runs = []
    for _ in range(repeats):
        t0 = clock()
        block(fn())
        runs.append(clock() - t0)
    compile_s = max(first - statistics.median(runs), 0.0)
    return Measurement(compile_s=compile_s, runs_s=tuple(runs), steps=int(steps), elements=int(elements))


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on: CPU, cores, OS, Python and package versions,
    and the JAX devices."""
    info: dict[str, Any] = {
        "cpu_model": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {d: _version(d) for d in ("brainpy-poisson-plugin", "brainpy", "jax", "jaxlib", "numpy")},
    }
    try:
        import jax

        info["jax_backend"] = jax.default_backend()
        info["devices"] = [f"{d.platform}:{getattr(d, 'device_kind', '?')}" for d in jax.devices()]
    except Exception as exc:
        info["devices"] = [f"unavailable: {exc}"]
    return info
