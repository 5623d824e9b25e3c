"""jax.export of a fused step, round trip through a fresh process (issue 12 item 15).

The recipe is the one documented in docs/export.md: export with
``DisabledSafetyCheck.custom_call("bpp_poisson_add")``, and load the plugin's FFI targets
(``native.load()``) in the process that deserialises and runs the artifact.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from bits import assert_same_bits

from brainpy_poisson_plugin import poisson_add
from brainpy_poisson_plugin.ops import native

export = pytest.importorskip("jax.export")
# jax.export serialisation needs flatbuffers (listed in the test extra).
pytest.importorskip("flatbuffers", reason="jax.export serialisation needs the flatbuffers package")

SIZE, NUM, P, W = 4096, 1000, 0.01, 0.5


def step(x, key_data):
    return poisson_add(x, key_data, NUM, P, W)  # impl="auto": the fused custom call on CPU


@pytest.mark.slow
def test_fused_step_round_trips_through_a_fresh_process(tmp_path):
    if not native.available("cpu"):
        pytest.skip("the CPU kernel is not built here: nothing fused to export")
    x = jnp.linspace(-1.0, 1.0, SIZE, dtype=jnp.float32)
    key_data = jax.random.key_data(jax.random.key(21))
    exported = export.export(
        jax.jit(step),
        disabled_checks=[export.DisabledSafetyCheck.custom_call(native.TARGET_NAME)],
    )(x, key_data)
    assert native.TARGET_NAME in exported.mlir_module(), "the export must contain the fused custom call"
    (tmp_path / "step.bin").write_bytes(exported.serialize())
    np.save(tmp_path / "x.npy", np.asarray(x))
    np.save(tmp_path / "key.npy", np.asarray(key_data))

    script = textwrap.dedent(
        f"""
        import numpy as np
        from jax import export
        from brainpy_poisson_plugin.ops import native
        native.load()  # registers the bpp_ FFI targets with this process's XLA
        exported = export.deserialize(bytearray(open({str(tmp_path / "step.bin")!r}, "rb").read()))
        out = exported.call(np.load({str(tmp_path / "x.npy")!r}), np.load({str(tmp_path / "key.npy")!r}))
        np.save({str(tmp_path / "out.npy")!r}, np.asarray(out))
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)
    out = np.load(tmp_path / "out.npy")
    assert_same_bits(out, np.asarray(poisson_add(x, key_data, NUM, P, W, impl="reference")))
    assert_same_bits(out, np.asarray(jax.jit(step)(x, key_data)))
    assert np.any(out != np.asarray(x))


def test_export_without_the_disabled_check_names_the_custom_call():
    if not native.available("cpu"):
        pytest.skip("the CPU kernel is not built here")
    x = jnp.zeros(16, jnp.float32)
    key_data = jax.random.key_data(jax.random.key(0))
    with pytest.raises(ValueError, match="custom call"):
        export.export(jax.jit(step))(x, key_data)


def test_reference_step_exports_without_any_disabled_check():
    x = jnp.zeros(64, jnp.float32)
    key_data = jax.random.key_data(jax.random.key(1))
    f = jax.jit(lambda x, k: poisson_add(x, k, NUM, P, W, impl="reference"))
    exported = export.deserialize(export.export(f)(x, key_data).serialize())
    assert_same_bits(exported.call(x, key_data), f(x, key_data))
