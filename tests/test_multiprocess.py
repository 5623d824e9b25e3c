"""Two processes on 127.0.0.1 (``jax.distributed``, gloo CPU collectives, 2 CPU devices
each) give, gathered, the bits one process on one device gives: a sharded ``poisson_add``
(automatic sharding and shard_map) and a multi-step BrainPy loop with ``PoissonInput`` on a
sharded Variable. The program is multiprocess_worker.py; every process has a time limit
and is killed past it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bits import assert_same_bits

HERE = Path(__file__).parent
WORKER = str(HERE / "multiprocess_worker.py")
TIMEOUT_S = 600


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(devices: int) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    env.pop("JAX_COORDINATOR_ADDRESS", None)
    return env


def _load(path: Path) -> dict:
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("multiprocess")
    single = subprocess.run(
        [sys.executable, WORKER, str(tmp / "single.npz"), "single"],
        env=_env(1),
        capture_output=True,
        text=True,
        check=False,
        timeout=TIMEOUT_S,
    )
    assert single.returncode == 0, single.stderr[-4000:]

    port = str(_free_loopback_port())
    procs = [
        subprocess.Popen(
            [sys.executable, WORKER, str(tmp / "multi.npz"), port, str(pid)],
            env=_env(2),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for pid in (0, 1)
    ]
    logs = []
    try:
        for proc in procs:
            _, err = proc.communicate(timeout=TIMEOUT_S)
            logs.append(err)
    finally:
        for proc in procs:  # a process still running past its time is stopped
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    for proc, err in zip(procs, logs):
        assert proc.returncode == 0, err[-4000:]
    return _load(tmp / "single.npz"), _load(tmp / "multi.npz")


def test_two_processes_four_devices(runs):
    single, multi = runs
    # 2 x 2 devices; jax 0.4.x starts a distributed CPU process with one device (2 x 1)
    assert int(multi["processes"]) == 2 and int(multi["devices"]) in (2, 4)
    assert int(single["devices"]) == 1


@pytest.mark.parametrize("case", ["jit poisson_add", "shard_map poisson_add", "brainpy for_loop"])
def test_two_processes_equal_one_device(runs, case):
    single, multi = runs
    assert_same_bits(multi[case], single[case], case)
    assert np.any(single[case] != 0), case  # the input did arrive
