"""Stride-1 'same' convolution whose gradients are matrix products (for the ConvLSTM cells on CPU).

Forward: XLA's convolution, unchanged. Backward (``jax.custom_vjp``): with the input's k x k patches laid out
as a (N*H*W, k*k*C) matrix P, the kernel gradient is ``P^T @ dY`` and the input gradient is ``dY @ K^T``
folded back onto the image (the sum of k*k shifted slices). XLA's CPU backend computes the kernel gradient
of a convolution as another convolution with an image-sized window, which is very slow there (for the
ConvLSTM model's large cells); as products it is much cheaper (measured: results/MEASUREMENTS.md, 'conv_same:
ConvLSTM kernel gradient on CPU'). GPUs keep XLA's own gradients (cuDNN is fast there): :func:`conv_same` picks
by backend.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

_DIMENSIONS = ("NHWC", "HWIO", "NHWC")


def _conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=_DIMENSIONS)


def patches(x: jax.Array, k: int) -> jax.Array:
    """(N, H, W, C) -> (N, H, W, k*k*C): the zero-padded k x k neighbourhood of each pixel, tap-major (the
    order of ``kernel.reshape(k * k * C, O)`` for a (k, k, C, O) kernel)."""
    p = k // 2
    _, h, w, _ = x.shape
    xp = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    return jnp.concatenate([xp[:, i:i + h, j:j + w, :] for i in range(k) for j in range(k)], axis=-1)


@jax.custom_vjp
def conv_same_dot_grad(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """``conv_general_dilated(x, kernel, 'SAME')`` (NHWC, HWIO, odd k), gradients as matrix products."""
    return _conv(x, kernel)


def _forward(x, kernel):
    return _conv(x, kernel), (x, kernel)


def _backward(residuals, g):
    x, kernel = residuals
    k, _, c, o = kernel.shape
    n, h, w, _ = x.shape
    p = k // 2
    cols = patches(x, k).reshape(n * h * w, k * k * c)
    g2 = g.reshape(n * h * w, o)
    d_kernel = jax.lax.dot_general(cols, g2, (((0,), (0,)), ((), ())), preferred_element_type=jnp.float32)
    d_cols = jax.lax.dot_general(g2, kernel.reshape(k * k * c, o), (((1,), (1,)), ((), ())),
                                 preferred_element_type=jnp.float32).reshape(n, h, w, k * k, c)
    # fold back: tap (i, j) of pixel (y, x) came from padded pixel (y + i, x + j)
    d_padded = sum(jnp.pad(d_cols[..., i * k + j, :], ((0, 0), (i, 2 * p - i), (j, 2 * p - j), (0, 0)))
                   for i in range(k) for j in range(k))
    d_x = d_padded[:, p:p + h, p:p + w, :]
    return d_x.astype(x.dtype), d_kernel.reshape(kernel.shape).astype(kernel.dtype)


conv_same_dot_grad.defvjp(_forward, _backward)


def conv_same(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """Stride-1 'same' convolution, (N, H, W, C) x (k, k, C, O) -> (N, H, W, O); on CPU its gradients are
    matrix products (:func:`conv_same_dot_grad`), elsewhere XLA's."""
    if jax.default_backend() == "cpu":
        return conv_same_dot_grad(x, kernel)
    return _conv(x, kernel)

