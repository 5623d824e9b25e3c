"""Sharded over 4 (fake CPU) devices, the result equals the one-device result bit for bit
and the compiled program has no all-gather; under shard_map and pmap a call given its block
(shard_map_block) equals it too, and one that is not is refused. Runs in subprocesses: the
device count is fixed when JAX starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from bits import assert_same_bits

HERE = Path(__file__).parent
FOUR_DEVICES = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")

SCRIPT = textwrap.dedent(
    """
    import json, os
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    from brainpy_poisson_plugin import poisson_add

    key = jax.random.key(2024)
    results = []
    cases = [
        ((8, 1000), P(None, "x"), (4,), ("x",)),
        ((8, 1000), P("x"), (4,), ("x",)),
        ((8, 1000), P("x", "y"), (2, 2), ("x", "y")),
        ((4, 6, 20), P(None, "y", "x"), (2, 2), ("x", "y")),
        ((4000,), P(("x", "y")), (2, 2), ("x", "y")),
    ]
    for impl in ("reference", "auto"):
        for shape, spec, mesh_shape, names in cases:
            one = poisson_add(jnp.zeros(shape), key, 1000, 0.01, 1.0, impl=impl)
            mesh = Mesh(np.array(jax.devices()).reshape(mesh_shape), names)
            x = jax.device_put(jnp.zeros(shape), NamedSharding(mesh, spec))
            f = jax.jit(lambda x: poisson_add(x, key, 1000, 0.01, 1.0, impl=impl))
            y = f(x)
            hlo = f.lower(x).compile().as_text()
            results.append(dict(
                impl=impl, spec=str(spec),
                equal=bool(np.array_equal(np.asarray(y), np.asarray(one))),
                all_gather="all-gather" in hlo,
                custom_call="bpp_poisson_add" in hlo,
                out_spec=str(y.sharding.spec),
                shards=len(y.addressable_shards),
            ))
    # vmap and grad inside a sharded program
    mesh = Mesh(np.array(jax.devices()), ("x",))
    xb = jax.device_put(jnp.zeros((4, 2000)), NamedSharding(mesh, P(None, "x")))
    keys = jax.random.split(key, 4)
    g = jax.jit(jax.vmap(lambda x, k: poisson_add(x, k, 100, 0.1, 1.0)))
    vm = g(xb, keys)
    ref = jnp.stack([poisson_add(jnp.zeros(2000), k, 100, 0.1, 1.0) for k in keys])
    results.append(dict(impl="vmap", spec="P(None,'x')", equal=bool(np.array_equal(np.asarray(vm), np.asarray(ref))),
                        all_gather="all-gather" in g.lower(xb, keys).compile().as_text(), custom_call=True,
                        out_spec="", shards=4))
    print(json.dumps(dict(devices=jax.device_count(), results=results)))
    """
)


def test_sharded_equals_single_device_without_all_gather():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=False, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["devices"] == 4
    for r in report["results"]:
        assert r["equal"], r
        assert not r["all_gather"], r
        if r["impl"] not in ("vmap",) and r["spec"] != "PartitionSpec()":
            assert r["shards"] == 4, r


# --- shard_map / pmap (program: shard_map_cases.py) ----------------------------------------


@pytest.fixture(scope="module")
def shard_map_results(tmp_path_factory):
    path = tmp_path_factory.mktemp("shard_map") / "results.npz"
    proc = subprocess.run(
        [sys.executable, str(HERE / "shard_map_cases.py"), str(path)],
        env=FOUR_DEVICES,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    with np.load(path) as data:
        results = {k: data[k] for k in data.files}
    assert int(results["devices"]) == 4
    return results


def _cases(results, prefix=""):
    return sorted(k[: -len("/sharded")] for k in results if k.endswith("/sharded") and k.startswith(prefix))


SHARD_MAP_CASES = [
    "1d-mesh rows",
    "1d-mesh cols",
    "1d-mesh flat",
    "2d-mesh both dims",
    "2d-mesh batch dim sharded, x replicated",
    "2d-mesh dim over two axes",
    "2d-mesh dim over two axes, minor first",
    "2d-mesh rank 3",
    "2d-mesh replicated target, explicit block",
    "2-device sub-mesh",
    "0-d target",
    "vmap over keys in shard_map",
    "weight tangent in shard_map",
    "pmap",
]


@pytest.mark.parametrize("case", SHARD_MAP_CASES)
def test_shard_map_with_block_equals_one_device(shard_map_results, case):
    name = f"auto: {case}"
    assert f"{name}/sharded" in shard_map_results, sorted(shard_map_results)
    assert_same_bits(shard_map_results[f"{name}/sharded"], shard_map_results[f"{name}/one"], name)


def test_shard_map_with_block_reference_impl(shard_map_results):
    names = _cases(shard_map_results, "reference: ")
    assert len(names) >= 6, names
    for name in names:
        assert_same_bits(shard_map_results[f"{name}/sharded"], shard_map_results[f"{name}/one"], name)


def test_sharded_draws_differ_between_blocks(shard_map_results):
    # The guarantee's point: no two devices draw the same numbers for different blocks.
    rows = shard_map_results["auto: 1d-mesh rows/sharded"].reshape(4, -1)
    assert all(not np.array_equal(rows[i], rows[j]) for i in range(4) for j in range(i + 1, 4))


def test_replicated_target_without_block(shard_map_results):
    """A P() target without block: right where JAX shows it replicated (check_vma), else refused."""
    for impl in ("reference", "auto"):
        name = f"{impl}: replicated target, no block"
        if bool(shard_map_results["vma_known"]):
            assert_same_bits(shard_map_results[f"{name}/sharded"], shard_map_results[f"{name}/one"], name)
        else:
            assert "shard_map_block" in str(shard_map_results[f"{name}/refused"])


@pytest.mark.parametrize(
    "case",
    [
        "no block",
        "no block, check off",
        "replicated, no block, check off",
        "pmap, no block",
        "jaxpr from outside",
        "vmap over a placed call",
        "PoissonInput in shard_map without shard_map_spec",
    ],
)
def test_unplaced_call_under_manual_axes_is_refused(shard_map_results, case):
    message = str(shard_map_results[f"{case}/error"])
    assert message.startswith("ValueError"), message
    assert "shard_map_block(spec, target.shape)" in message and "same numbers" in message, message


def test_shard_map_block_outside_shard_map_is_refused(shard_map_results):
    message = str(shard_map_results["helper outside shard_map/error"])
    assert message.startswith("ValueError") and "not a manual axis" in message, message


def test_poisson_input_in_shard_map(shard_map_results):
    name = "PoissonInput in shard_map"
    assert_same_bits(shard_map_results[f"{name}/sharded"], shard_map_results[f"{name}/one"], name)
    # the refused update did not advance the node's step counter
    assert int(shard_map_results["PoissonInput refused: rng step afterwards"]) == 0


# --- Block / shard_map_block argument checks (one device, in process) -----------------------


def test_block_argument_checks():
    import jax
    import jax.numpy as jnp
    from jax.sharding import PartitionSpec as P

    from brainpy_poisson_plugin import Block, poisson_add, shard_map_block

    key = jax.random.key(0)
    x = jnp.zeros((4, 5))
    with pytest.raises(TypeError, match="block must be a Block"):
        poisson_add(x, key, 10, 0.1, 1.0, block=(0, 0))
    with pytest.raises(ValueError, match="rank"):
        poisson_add(x, key, 10, 0.1, 1.0, block=Block(jnp.zeros(1, jnp.int32), (8,)))
    with pytest.raises(ValueError, match="smaller than target.shape"):
        poisson_add(x, key, 10, 0.1, 1.0, block=Block(jnp.zeros(2, jnp.int32), (2, 5)))
    with pytest.raises(ValueError, match="outside the global shape"):
        poisson_add(x, key, 10, 0.1, 1.0, block=Block(jnp.array([6, 0], jnp.int32), (8, 5)))
    with pytest.raises(ValueError, match="2\\*\\*32"):
        poisson_add(x, key, 10, 0.1, 1.0, block=Block(jnp.zeros(2, jnp.int32), (2**20, 2**12)))
    with pytest.raises(TypeError, match="PartitionSpec"):
        shard_map_block(("x",), (4,))
    with pytest.raises(ValueError, match="more than the block's rank"):
        shard_map_block(P(None, None), (4,))


def test_hand_made_blocks_equal_the_whole():
    """Block by hand (no mesh): the pieces of a split array equal one call on the whole."""
    import jax
    import jax.numpy as jnp

    from brainpy_poisson_plugin import Block, poisson_add

    key = jax.random.key(5)
    whole = poisson_add(jnp.zeros((6, 7)), key, 100, 0.1, 1.0)
    pieces = [
        poisson_add(jnp.zeros((3, 7)), key, 100, 0.1, 1.0, block=Block(jnp.array([r, 0], jnp.int32), (6, 7)))
        for r in (0, 3)
    ]
    assert_same_bits(jnp.concatenate(pieces), whole)


# --- the weak-scaling benchmark (no timing assertions: what it measures and checks) ------------


def test_scaling_benchmark_runs_and_finds_no_collectives(tmp_path):
    import json

    from brainpy_poisson_plugin.bench import main

    rc = main(["--scaling", "--quick", "--steps", "2", "--repeats", "1", "--out", str(tmp_path)])
    doc = json.loads((tmp_path / "scaling-quick.json").read_text())
    rows = doc["results"]
    assert [r["devices"] for r in rows] == [1, 2, 4]
    for r in rows:
        assert r["status"] == "ok", r
        assert r["neurons"] == r["devices"] * r["neurons_per_device"]
        assert not any(r["collectives"].values()), r  # the sharded program communicates nothing
    assert rc == 0
