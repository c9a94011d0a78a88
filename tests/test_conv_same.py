"""The ConvLSTM cells' convolution: XLA's forward, gradients as matrix products on CPU."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seg_jax.models.conv_same import conv_same, conv_same_dot_grad, patches


def _xla_conv(x, kernel):
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


@pytest.mark.parametrize("shape", [(2, 9, 11, 5, 8, 3), (1, 7, 6, 3, 4, 5), (1, 4, 4, 2, 3, 1)])
def test_gradients_equal_xla(shape):
    n, h, w, c, o, k = shape
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(n, h, w, c)), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(k, k, c, o)), jnp.float32)
    g = jnp.asarray(rng.normal(size=(n, h, w, o)), jnp.float32)
    ours = jax.grad(lambda a, b: jnp.sum(conv_same_dot_grad(a, b) * g), (0, 1))(x, kernel)
    ref = jax.grad(lambda a, b: jnp.sum(_xla_conv(a, b) * g), (0, 1))(x, kernel)
    np.testing.assert_array_equal(np.asarray(conv_same(x, kernel)), np.asarray(_xla_conv(x, kernel)))
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-4)


def test_patches_layout_matches_kernel_reshape():
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(1, 5, 6, 3)), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(3, 3, 3, 4)), jnp.float32)
    as_product = patches(x, 3) @ kernel.reshape(27, 4)
    np.testing.assert_allclose(np.asarray(as_product), np.asarray(_xla_conv(x, kernel)), atol=1e-5)


def test_bfloat16_gradients_keep_dtypes():
    x = jnp.ones((1, 6, 6, 4), jnp.bfloat16)
    kernel = jnp.full((3, 3, 4, 8), 0.1, jnp.bfloat16)
    dx, dk = jax.grad(lambda a, b: jnp.sum(conv_same_dot_grad(a, b).astype(jnp.float32)), (0, 1))(x, kernel)
    assert dx.dtype == jnp.bfloat16 and dk.dtype == jnp.bfloat16
    assert float(dk[1, 1, 0, 0]) == pytest.approx(36.0, rel=1e-2)  # the centre tap sees all 36 pixels
