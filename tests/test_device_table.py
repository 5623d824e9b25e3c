"""Tables for a traced ``p``, built inside the compiled program (``bpp_binomial_table``).

The table a traced ``p`` gets equals, threshold for threshold, the host-built
``binomial_table(n, p)`` of the same value; a batched ``p`` gives one table per element;
the compiled program has no host callback; a jitted step with a traced ``p`` survives
``jax.export`` and runs in a fresh process.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp
from bits import assert_same_bits

from brainpy_poisson_plugin import poisson_add
from brainpy_poisson_plugin.ops import native
from brainpy_poisson_plugin.ops.device_table import (
    host_tables,
    table_length,
    traced_table,
)
from brainpy_poisson_plugin.sampling.tables import MAX_NUM_INPUT, binomial_table

NS = [1, 2, 37, 1000, 10**5, 10**7, MAX_NUM_INPUT]
PS = [0.0, 1e-9, 1e-6, 1e-3, 0.02, 0.5, 0.97, 1.0 - 1e-6, 1.0 - 1e-9, 1.0]


@pytest.fixture(scope="module", autouse=True)
def _native_loaded():
    status = native.load()
    if status.get("cpu") != "registered":
        pytest.skip(f"native CPU library not available: {status.get('cpu')}")


@pytest.fixture(autouse=True)
def _on_cpu():
    with jax.default_device(jax.devices("cpu")[0]):
        yield


class _X64:
    """Float64 for the duration of a block (every supported jax version)."""

    def __enter__(self):
        self._old = jax.config.jax_enable_x64
        jax.config.update("jax_enable_x64", True)

    def __exit__(self, *exc):
        jax.config.update("jax_enable_x64", self._old)


def custom_call_targets(text: str) -> set[str]:
    """The custom-call targets named in StableHLO (``custom_call @name``) or compiled HLO
    (``custom_call_target="name"``) text."""
    return set(re.findall(r"custom_call @([\w.]+)", text)) | set(re.findall(r'custom_call_target="([^"]+)"', text))


def _check_rows(n, p_value, words, k0, size):
    """The padded device table equals the host table of exactly the float p_value."""
    table = binomial_table(n, p_value)
    assert (int(k0), int(size)) == (table.k0, table.size), (n, p_value)
    words = np.asarray(words)
    assert words.shape == (table_length(n), 2)
    assert np.array_equal(words[: table.size], table.words()), (n, p_value)
    assert np.all(words[table.size :] == 0xFFFFFFFF)


@pytest.mark.parametrize("n", NS)
def test_traced_table_equals_host_table_float32(n):
    build = jax.jit(jax.vmap(lambda p: traced_table(n, p)))
    ps = np.asarray(PS, np.float32)
    words, k0, size = build(jnp.asarray(ps))
    for i, p in enumerate(ps):
        _check_rows(n, float(p), words[i], k0[i], size[i])


@pytest.mark.parametrize("n", NS)
def test_traced_table_equals_host_table_float64(n):
    with _X64():
        build = jax.jit(lambda p: traced_table(n, p))
        for p in PS:
            words, k0, size = build(jnp.asarray(p, jnp.float64))
            _check_rows(n, p, words, k0, size)


def test_invalid_run_time_p_gives_size_minus_one():
    words, k0, size = jax.jit(jax.vmap(lambda p: traced_table(10, p)))(jnp.array([jnp.nan, -0.1, 1.5, 0.25]))
    assert np.asarray(size).tolist()[:3] == [-1, -1, -1] and np.asarray(k0).tolist()[:3] == [-1, -1, -1]
    assert np.all(np.asarray(words)[:3] == 0xFFFFFFFF)
    _check_rows(10, 0.25, words[3], k0[3], size[3])


def test_batched_p_is_one_call_of_any_shape():
    ps = jnp.asarray(np.linspace(0.0, 1.0, 12, dtype=np.float32).reshape(3, 4))
    fn = jax.jit(lambda p: traced_table(1000, p))
    text = fn.lower(ps).as_text()
    assert text.count("bpp_binomial_table") >= 1
    words, k0, size = fn(ps)
    assert words.shape == (3, 4, table_length(1000), 2) and k0.shape == (3, 4)
    ref_words, ref_k0, ref_size = host_tables(1000, table_length(1000), np.asarray(ps))
    assert np.array_equal(np.asarray(words), ref_words)
    assert np.array_equal(np.asarray(k0), ref_k0) and np.array_equal(np.asarray(size), ref_size)
    # nested vmap gives the same tables as the batched call
    nested = jax.jit(jax.vmap(jax.vmap(lambda p: traced_table(1000, p))))(ps)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(nested, (words, k0, size)))


@pytest.mark.parametrize("impl", ["fused", "reference"])
def test_compiled_program_has_no_host_callback(impl):
    x = jnp.zeros((1000,), jnp.float32)
    key = jax.random.key(0)

    def step(x, p):
        return poisson_add(x, key, 1000, p, 0.5, impl=impl)

    for lowered in (
        jax.jit(step).lower(x, jnp.float32(0.01)),
        jax.jit(jax.vmap(step, in_axes=(None, 0))).lower(x, jnp.linspace(0.0, 0.1, 16)),
    ):
        targets = custom_call_targets(lowered.as_text())
        assert native.TABLE_TARGET_NAME in targets
        assert not [t for t in targets if "callback" in t.lower()], targets
        compiled = custom_call_targets(lowered.compile().as_text())
        assert not [t for t in compiled if "callback" in t.lower()], compiled


@pytest.mark.parametrize("n, p", [(1000, 0.01), (37, 0.5), (10**5, 0.002), (1000, 1.0), (1000, 0.0)])
def test_fused_equals_reference_with_traced_p(n, p):
    x = jax.random.normal(jax.random.key(1), (20_001,), jnp.float32)
    key = jax.random.key(2)
    outs = {
        impl: jax.jit(lambda x, p, impl=impl: poisson_add(x, key, n, p, 0.25, impl=impl))(x, jnp.float32(p))
        for impl in ("fused", "reference")
    }
    assert_same_bits(outs["fused"], outs["reference"])
    # and equal to the same constant p (same table, same key)
    assert_same_bits(outs["fused"], poisson_add(x, key, n, float(np.float32(p)), 0.25, impl="fused"))


def test_fused_equals_reference_with_batched_p():
    x = jax.random.normal(jax.random.key(3), (5_000,), jnp.float32)
    ps = jnp.linspace(1e-4, 4e-3, 16)
    keys = jax.random.split(jax.random.key(4), 16)
    outs = {}
    for impl in ("fused", "reference"):
        f = jax.jit(jax.vmap(lambda p, k, impl=impl: poisson_add(x, k, 1000, p, 1.0, impl=impl)))
        outs[impl] = f(ps, keys)
    assert_same_bits(outs["fused"], outs["reference"])
    for i in range(16):  # each row is the call with that row's p and key
        row = poisson_add(x, keys[i], 1000, float(ps[i]), 1.0, impl="fused")
        assert_same_bits(outs["fused"][i], row)


def test_traced_p_out_of_range_gives_nan():
    x = jnp.zeros((100,), jnp.float32)
    f = jax.jit(lambda p: poisson_add(x, jax.random.key(0), 10, p, 1.0, impl="fused"))
    for bad in (jnp.nan, -0.5, 1.5):
        assert np.all(np.isnan(np.asarray(f(jnp.float32(bad)))))


_EXPORT_CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    import jax
    import brainpy_poisson_plugin  # registers the FFI targets (plugin imported)
    from brainpy_poisson_plugin.ops import native
    from brainpy_poisson_plugin.ops._jax_compat import jax

    assert native.load()["cpu"] == "registered"
    from jax import export
    path = sys.argv[1]
    with open(path + ".bin", "rb") as fh:
        exported = export.deserialize(bytearray(fh.read()))
    data = np.load(path + ".npz")
    out = exported.call(data["x"], data["key"], data["ps"])
    np.save(path + ".out.npy", np.asarray(out))
    """
)


def test_export_of_a_traced_p_step_runs_in_a_fresh_process(tmp_path):
    from jax import export

    def step(x, key, ps):
        return jax.vmap(lambda p: poisson_add(x, key, 1000, p, 1.0, impl="fused"))(ps)

    x = np.linspace(-1.0, 1.0, 4_000, dtype=np.float32)
    key = np.asarray(jax.random.key_data(jax.random.key(9)))
    ps = np.asarray([0.0005, 0.001, 0.0015], np.float32)
    checks = [export.DisabledSafetyCheck.custom_call(native.TARGET_NAME)]
    checks.append(export.DisabledSafetyCheck.custom_call(native.TABLE_TARGET_NAME))
    exported = export.export(jax.jit(step), platforms=["cpu"], disabled_checks=checks)(x, key, ps)
    targets = custom_call_targets(exported.mlir_module())
    assert native.TABLE_TARGET_NAME in targets and not [t for t in targets if "callback" in t.lower()]
    base = str(tmp_path / "step")
    with open(base + ".bin", "wb") as fh:
        fh.write(exported.serialize())
    np.savez(base + ".npz", x=x, key=key, ps=ps)
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, "-c", _EXPORT_CHILD, base], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected = np.asarray(jax.jit(step)(x, key, ps))
    assert_same_bits(np.load(base + ".out.npy"), expected)


_DEGRADED_CHILD = textwrap.dedent(
    """
    import warnings
    warnings.simplefilter("ignore")
    import numpy as np, jax, jax.numpy as jnp
    from brainpy_poisson_plugin import poisson_add
    x = jnp.zeros((10_000,), jnp.float32)
    f = jax.jit(jax.vmap(lambda p: poisson_add(x, jax.random.key(5), 1000, p, 1.0)))
    ps = jnp.asarray([0.001, 0.01, 0.5], jnp.float32)
    import re
    targets = set(re.findall(r"custom_call @([\\w.]+)", f.lower(ps).as_text()))
    assert any("callback" in t for t in targets), targets
    np.save(__import__("sys").argv[1], np.asarray(f(ps)))
    """
)


def test_degraded_mode_callback_gives_the_same_result(tmp_path):
    """Without the native library (BRAINPY_POISSON_NATIVE=0) tables come from a host
    callback: slower, but the same tables and so the same draws."""
    out = str(tmp_path / "degraded.npy")
    env = dict(os.environ, BRAINPY_POISSON_NATIVE="0", JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, "-c", _DEGRADED_CHILD, out], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    x = jnp.zeros((10_000,), jnp.float32)
    ps = jnp.asarray([0.001, 0.01, 0.5], jnp.float32)
    expected = jax.jit(jax.vmap(lambda p: poisson_add(x, jax.random.key(5), 1000, p, 1.0)))(ps)
    assert_same_bits(np.load(out), np.asarray(expected))


def _gpu_device():
    try:
        gpus = [d for d in jax.devices("gpu") if d.platform in ("gpu", "cuda")]
    except Exception:
        gpus = []
    return gpus[0] if gpus else None


@pytest.mark.gpu
@pytest.mark.parametrize("n", NS)
def test_cuda_tables_equal_host_tables(n):
    """The CUDA kernel of bpp_binomial_table builds the same tables (f32 and f64 p)."""
    device = _gpu_device()
    if device is None:
        pytest.skip("no CUDA device")
    assert native.load().get("cuda") == "registered", native.load()
    ps32 = np.asarray(PS, np.float32)
    with jax.default_device(device):
        words, k0, size = jax.jit(lambda p: traced_table(n, p))(jax.device_put(ps32, device))
    for i, p in enumerate(ps32):
        _check_rows(n, float(p), words[i], k0[i], size[i])
    with _X64(), jax.default_device(device):
        words, k0, size = jax.jit(lambda p: traced_table(n, p))(jax.device_put(np.asarray(PS), device))
    for i, p in enumerate(PS):
        _check_rows(n, p, words[i], k0[i], size[i])


def test_grad_with_a_traced_p_that_depends_on_the_variable():
    """d/d weight of sum(poisson_add) is the sum of the counts, also when p itself is a
    function of the differentiated arguments (the table has a zero tangent)."""
    x = jnp.zeros((2_000,), jnp.float32)
    key = jax.random.key(8)

    def total(weight, freq):
        return jnp.sum(poisson_add(x, key, 1000, freq * 0.1 / 1000.0, weight, impl="fused"))

    dw, dfreq = jax.grad(total, argnums=(0, 1))(jnp.float32(0.5), jnp.float32(20.0))
    counts = poisson_add(x, key, 1000, float(np.float32(20.0) * np.float32(0.1) / np.float32(1000.0)), 1.0)
    assert float(dw) == float(jnp.sum(counts))
    assert float(dfreq) == 0.0
