"""Targets of 2**31 and more elements, without allocating them: the layout encoding, the
reference's 64-bit flat-index arithmetic (in 32-bit words), and the kernel and reference
agreeing on blocks whose global indices are at and past 2**31 and 2**32.

The counter of element ``g`` is ``(g >> 32, g & 0xffffffff)``: every element below 2**32
keeps the first word 0, so results for smaller arrays are unchanged.
"""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp
from bits import assert_same_bits
from test_native_kernel import (
    LARGE_BLOCKS,
    kernel,
    make_case,
    np_global_index,
    np_poisson_add,
    rows,
)

from brainpy_poisson_plugin import poisson_add
from brainpy_poisson_plugin.ops import native
from brainpy_poisson_plugin.ops.primitive import (
    block_layout,
    check_layout_shape,
    layout_with_leading_dim,
    layout_with_origin,
    unsharded_layout,
)
from brainpy_poisson_plugin.sampling.reference import (
    global_flat_index,
    reference_poisson_add,
)


@pytest.fixture(autouse=True)
def _on_cpu():
    with jax.default_device(jax.devices("cpu")[0]):
        yield


def test_unsharded_layout_of_2_31_and_more():
    lay = unsharded_layout((2**31,))
    assert lay.dtype == np.uint32 and lay.shape == (2, 1)
    assert lay.tolist() == [[0], [2**31]]
    assert unsharded_layout((2**32 - 1,)).tolist() == [[0], [2**32 - 1]]
    assert unsharded_layout((3, 2**31, 2)).tolist() == [[0, 0, 0], [3, 2**31, 2]]
    assert unsharded_layout(()).shape == (2, 0)


@pytest.mark.parametrize("shape", [(2**32,), (2, 2**33), (2**21, 2**21, 2**21)])
def test_shapes_no_layout_describes_are_refused(shape):
    with pytest.raises(ValueError, match="target"):
        check_layout_shape(shape)
    with pytest.raises(ValueError, match="target"):
        unsharded_layout(shape)


def test_poisson_add_size_limit_without_allocating():
    key = jnp.array([1, 2], jnp.uint32)

    def f(t):
        return poisson_add(t, key, 10, 0.1, 1.0)

    out = jax.eval_shape(f, jax.ShapeDtypeStruct((4, 2**31), jnp.float16))  # 2**33 elements: admitted
    assert out.shape == (4, 2**31)
    assert jax.eval_shape(f, jax.ShapeDtypeStruct((2**31 + 5,), jnp.float16)).shape == (2**31 + 5,)
    with pytest.raises(ValueError, match=r"target dimensions must be below 2\*\*32"):
        jax.eval_shape(f, jax.ShapeDtypeStruct((2**32,), jnp.float16))


def test_layout_helpers():
    lay = np.asarray(block_layout(np.array([1, 2**31 + 3]), (4, 2**32 - 1)))
    assert lay.dtype == np.uint32 and lay.tolist() == [[1, 2**31 + 3], [4, 2**32 - 1]]
    traced = jax.jit(lambda o: block_layout(o, (8, 2**31)))(jnp.array([3, 2**31 - 1], jnp.uint32))
    assert np.asarray(traced).tolist() == [[3, 2**31 - 1], [8, 2**31]]
    moved = np.asarray(layout_with_origin(unsharded_layout((6, 7)), [2, 5]))
    assert moved.tolist() == [[2, 5], [6, 7]]
    batched = np.asarray(layout_with_leading_dim(unsharded_layout((2**31,)), 3, origin=1))
    assert batched.dtype == np.uint32 and batched.tolist() == [[1, 0], [3, 2**31]]
    with pytest.raises(ValueError, match="leading dimension"):
        layout_with_leading_dim(unsharded_layout((5,)), 2**32)


@pytest.mark.parametrize("gdims,origin,lshape", LARGE_BLOCKS)
def test_reference_flat_index_matches_uint64_arithmetic(gdims, origin, lshape):
    layout = np.array([origin, gdims], np.uint64).astype(np.uint32)
    hi, lo = jax.jit(lambda lay: global_flat_index(lay, lshape))(jnp.asarray(layout))
    g = (np.asarray(hi).astype(np.uint64) << np.uint64(32)) | np.asarray(lo).astype(np.uint64)
    np.testing.assert_array_equal(g, np_global_index(lshape, origin, gdims))


def test_reference_flat_index_word_boundaries():
    """Index arithmetic right at 2**31 - 1, 2**31, 2**32 - 1, 2**32 and 2**32 + 1 and at
    carries between the words (strides with all 32 low bits set)."""
    for gdims, origin, lshape in [
        ((2**32 - 1, 3), (2**31 - 1, 0), (3, 3)),
        ((7, 2**32 - 1), (1, 2**32 - 4), (2, 3)),
        ((2**31 + 1, 2**31 - 1), (2**31 - 1, 2**31 - 3), (2, 2)),
    ]:
        layout = np.array([origin, gdims], np.uint64).astype(np.uint32)
        hi, lo = global_flat_index(jnp.asarray(layout), lshape)
        g = (np.asarray(hi).astype(np.uint64) << np.uint64(32)) | np.asarray(lo).astype(np.uint64)
        np.testing.assert_array_equal(g, np_global_index(lshape, origin, gdims))


def test_unchanged_below_2_32():
    """For indices below 2**32 the first counter word is 0, as before 64-bit counters."""
    from brainpy_poisson_plugin.ops._jax_compat import threefry_2x32

    key = jnp.array([5, 6], jnp.uint32)
    lay = jnp.asarray(np.array([[2**31 - 2], [2**32 - 1]], np.uint64).astype(np.uint32))
    from brainpy_poisson_plugin.sampling.reference import element_words

    hi, lo = element_words(key, lay, (4,))
    g = jnp.arange(2**31 - 2, 2**31 + 2, dtype=jnp.uint32)
    bits = threefry_2x32(key, jnp.concatenate([jnp.zeros(4, jnp.uint32), g]))
    np.testing.assert_array_equal(np.asarray(hi), np.asarray(bits[:4]))
    np.testing.assert_array_equal(np.asarray(lo), np.asarray(bits[4:]))


@pytest.mark.parametrize("gdims,origin,lshape", LARGE_BLOCKS)
def test_reference_equals_kernel_and_oracle_past_2_32(gdims, origin, lshape):
    rng = np.random.default_rng(3)
    key = np.array([0x0BADF00D, 0xC0FFEE], np.uint32)
    t, inc = make_case(rng, 40)
    block = rng.standard_normal(lshape).astype(np.float32)
    layout = np.array([origin, gdims], np.uint64).astype(np.uint32)
    ref = jax.jit(reference_poisson_add)(
        jnp.asarray(block), jnp.asarray(key), jnp.asarray(rows(t)), jnp.asarray(inc), jnp.asarray(layout)
    )
    want = np_poisson_add(block, key, t, inc, origin, gdims)
    assert_same_bits(np.asarray(ref), want)
    if native.available("cpu"):
        assert_same_bits(kernel(block, key, t, inc, origin=origin, gdims=gdims), want)
