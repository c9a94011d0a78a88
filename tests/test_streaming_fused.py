"""The fast (BatchNorm-folded) streaming path equals the plain Flax path; the postprocess is unchanged."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seg_jax.bench.one_jit import one_jit_step
from seg_jax.bench.run import random_variables as bench_random_variables  # BN not the identity
from seg_jax.inference import streaming


def _frames(n, h, w, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = []
    for t in range(n):
        base = np.stack([128 + 100 * np.sin((xx + 3 * t) / 7.0), 128 + 100 * np.cos(yy / 5.0),
                         128 + 60 * np.sin((xx + yy) / 9.0)], -1)
        out.append(np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8))
    return out


@pytest.mark.parametrize("name", ["mobilenet", "convlstm"])
def test_fast_path_equals_plain(name):
    v = bench_random_variables(name)
    plain = streaming.make_streaming_step(name, v, input_size=(64, 64), fast=False)
    fast = streaming.make_streaming_step(name, v, input_size=(64, 64), fast=True, dot_dtype="float32")
    assert fast.fast and not plain.fast
    sp, sf = plain.init_state(), fast.init_state()
    for frame in _frames(3, 72, 96):
        sp, ap = plain(sp, frame)
        sf, af = fast(sf, frame)
        assert ap.shape == (72, 96)
        np.testing.assert_allclose(np.asarray(af), np.asarray(ap), atol=1e-4)
    for (hp, cp), (hf, cf) in zip(sp, sf):
        np.testing.assert_allclose(np.asarray(hf), np.asarray(hp), atol=1e-4)
        np.testing.assert_allclose(np.asarray(cf), np.asarray(cp), atol=1e-4)


@pytest.mark.parametrize("name", ["mobilenet", "convlstm"])
def test_bfloat16_products_stay_close_to_float32(name):
    """bfloat16 1x1 products (the CPU default where bf16 dots are native) move probabilities by < 5e-3."""
    v = bench_random_variables(name)
    ref = streaming.make_streaming_step(name, v, input_size=(64, 64), dot_dtype="float32")
    bf = streaming.make_streaming_step(name, v, input_size=(64, 64), dot_dtype="bfloat16")
    assert bf.params["decoder/head"]["kernel"].dtype == jnp.bfloat16
    assert bf.params["encoder/conv"]["kernel"].dtype == jnp.float32  # only 1x1 kernels change
    sr, sb = ref.init_state(), bf.init_state()
    for frame in _frames(2, 64, 64):
        sr, ar = ref(sr, frame)
        sb, ab = bf(sb, frame)
        diff = np.abs(np.asarray(ab) - np.asarray(ar))
        assert 0 < diff.max() < 5e-3, diff.max()


def test_dot_dtype_auto_and_bad_value():
    from seg_jax.inference import fused
    expected = "bfloat16" if fused.cpu_has_native_bf16() else "float32"
    assert fused.default_dot_dtype("cpu") == expected
    assert fused.default_dot_dtype("gpu") == "float32"
    assert fused.resolve_dot_dtype("auto") == jnp.dtype(fused.default_dot_dtype())
    with pytest.raises(ValueError, match="dot dtype must be 'auto', 'float32' or 'bfloat16', got 'float16'"):
        fused.resolve_dot_dtype("float16")
    with pytest.raises(ValueError, match="dot dtype"):
        from seg_jax import Segmenter
        Segmenter("mobilenet", checkpoint="random", dot_dtype="int8")


def test_unet_falls_back_to_plain():
    from seg_jax.inference.segmenter import random_variables
    step = streaming.make_streaming_step("unet", random_variables("unet"), input_size=(32, 32), fast=True)
    assert not step.fast


def test_pieces_equal_single_jit_and_float_guide():
    v = bench_random_variables("mobilenet")
    step = streaming.make_streaming_step("mobilenet", v, input_size=(64, 96))
    frame = _frames(1, 90, 130)[0]
    _, a = step((), frame)
    _, b = one_jit_step(step, (), frame)
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)
    # the postprocess gives the same alpha from the uint8 frame or its float copy
    small = streaming.preprocess(jnp.asarray(frame), (64, 96))[1]
    prob = jnp.asarray(np.random.default_rng(1).random((64, 96)), jnp.float32)
    for refine in (streaming.Refine(), streaming.Refine(color=False), streaming.Refine("bilinear")):
        u = streaming.postprocess(prob, small, jnp.asarray(frame), refine)
        f = streaming.postprocess(prob, small, jnp.asarray(frame, jnp.float32) / 255.0, refine)
        np.testing.assert_allclose(np.asarray(u), np.asarray(f), atol=1e-6)


def _naive_guided_upsample(p, guide_low, guide_high, r, eps, color):
    """He & Sun's fast guided upsample written per pixel in numpy (float64): the reference."""
    from seg_jax.ops.resize import LUMA
    def box(x):  # window mean over the pixels inside the image: zero-padded window sums / window counts
        window = (2 * r + 1, 2 * r + 1)
        pad = ((r, r), (r, r)) + ((0, 0),) * (x.ndim - 2)
        sums = np.lib.stride_tricks.sliding_window_view(np.pad(x, pad), window, axis=(0, 1)).sum(axis=(-2, -1))
        counts = np.lib.stride_tricks.sliding_window_view(np.pad(np.ones(x.shape[:2]), r), window).sum(axis=(-2, -1))
        return sums / counts.reshape(counts.shape + (1,) * (x.ndim - 2))
    p, gl, gh = (np.asarray(v, np.float64) for v in (p, guide_low, guide_high))
    if not color:
        gl, gh = gl @ np.asarray(LUMA), gh @ np.asarray(LUMA)
        gl, gh = gl[..., None], gh[..., None]
    k = gl.shape[-1]
    mean_i, mean_p = box(gl), box(p)
    cov_ip = box(gl * p[..., None]) - mean_i * mean_p[..., None]
    sigma = box(gl[..., :, None] * gl[..., None, :]) - mean_i[..., :, None] * mean_i[..., None, :] + eps * np.eye(k)
    a = np.linalg.solve(sigma, cov_ip[..., None])[..., 0]
    b = mean_p - (a * mean_i).sum(-1)
    coef = np.concatenate([box(a), box(b)[..., None]], -1)
    size = gh.shape[:2]
    up = np.asarray(jax.image.resize(jnp.asarray(coef), size + (k + 1,), "linear", antialias=False), np.float64)
    return np.clip((up[..., :k] * gh).sum(-1) + up[..., k], 0, 1)


@pytest.mark.parametrize("color", [True, False])
def test_fast_guided_upsample_matches_naive_reference(color):
    from seg_jax.ops.guided_filter import fast_guided_upsample
    rng = np.random.default_rng(0)
    p = rng.random((24, 40)).astype(np.float32)
    gl = rng.random((24, 40, 3)).astype(np.float32)
    gh = rng.random((70, 110, 3)).astype(np.float32)
    ref = _naive_guided_upsample(p, gl, gh, 2, 1e-2, color)
    got = fast_guided_upsample(jnp.asarray(p), jnp.asarray(gl), jnp.asarray(gh), 2, 1e-2, color)
    np.testing.assert_allclose(np.asarray(got), ref, atol=2e-4)


def test_guided_fit_subsampled_keeps_the_edges():
    """Fitting at half the inference size (Refine(subsample=2)) follows the frame's edge like the full fit."""
    from seg_jax.ops.guided_filter import fast_guided_upsample, guided_coefficients
    hi = np.zeros((96, 128, 3), np.float32)
    hi[:, 61:] = 1.0                                     # a vertical edge off the low-resolution grid
    gt = hi[..., 0]
    gl = jnp.asarray(hi.reshape(48, 2, 64, 2, 3).mean(axis=(1, 3)))
    p = jnp.asarray(np.clip(np.asarray(gl[..., 0]) + 0.2 * (np.arange(64) % 2), 0, 1))  # noisy low-res alpha
    full = np.asarray(fast_guided_upsample(p, gl, jnp.asarray(hi), 4, 1e-3, True, subsample=1))
    half = np.asarray(fast_guided_upsample(p, gl, jnp.asarray(hi), 4, 1e-3, True, subsample=2))
    blurry = np.asarray(fast_guided_upsample(p, gl, jnp.asarray(hi), 4, 1e3, True, subsample=1))  # ~bilinear
    assert np.abs(half - gt).mean() < 0.6 * np.abs(blurry - gt).mean()
    assert np.abs(half - full).mean() < 0.01
    assert guided_coefficients(p, gl, 4, 1e-3, True, subsample=2).shape == (4, 24, 32)
    assert guided_coefficients(p[:47], gl[:47], 4, 1e-3, True, subsample=2).shape == (4, 47, 64)  # odd: no shrink
    with pytest.raises(ValueError, match="subsample"):
        streaming.Refine(subsample=0)


def test_streaming_post_stages_equal_one_function():
    """The streaming step's separately jitted guided-filter stages give fast_guided_upsample's alpha."""
    from seg_jax.ops.guided_filter import fast_guided_upsample
    rng = np.random.default_rng(3)
    prob = jnp.asarray(rng.random((32, 64)), jnp.float32)
    small = jnp.asarray(rng.random((1, 32, 64, 3)), jnp.float32)
    frame = jnp.asarray(rng.integers(0, 256, (50, 130, 3)), jnp.uint8)
    for refine in (streaming.Refine(radius=3), streaming.Refine(radius=3, color=False),
                   streaming.Refine(radius=3, subsample=2)):
        got = streaming._post_pieces(refine)(prob, small, frame)
        want = fast_guided_upsample(prob, small[0], frame, 3, refine.eps, refine.color, refine.subsample)
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)  # float rounding differs
    same_size = streaming._post_pieces(streaming.Refine())(prob, small, frame[:32, :64])
    assert same_size.shape == (32, 64)
