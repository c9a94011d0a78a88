"""Jitted image ops: filters, guided filter, alpha refinement, compositing, and the flicker metric."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seg_jax.evaluation.metrics_temporal import FlickerMeter, flicker
from seg_jax.ops import (
    AlphaOptions,
    CompositeOptions,
    box_mean,
    composite,
    fast_guided_upsample,
    gaussian_blur,
    guided_filter,
    max_filter,
    min_filter,
    refine_alpha,
    render,
    resize,
)


def naive_box_mean(x, r):
    h, w = x.shape[:2]
    out = np.zeros_like(x)
    for i in range(h):
        for j in range(w):
            out[i, j] = x[max(0, i - r):i + r + 1, max(0, j - r):j + r + 1].mean(axis=(0, 1))
    return out


@pytest.mark.parametrize("r", [1, 2, 3, 6, 7, 12, 13])  # every doubling pattern of 2r+1, and cumsum past 12
def test_box_mean_matches_naive(r):
    x = np.random.default_rng(0).random((30, 33, 2)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(box_mean(jnp.asarray(x), r)), naive_box_mean(x, r), atol=1e-5)


def test_box_mean_over_other_axes():
    x = np.random.default_rng(2).random((3, 14, 17)).astype(np.float32)
    planes = np.asarray(box_mean(jnp.asarray(x), 4, axes=(1, 2)))
    np.testing.assert_allclose(planes, np.moveaxis(naive_box_mean(np.moveaxis(x, 0, -1), 4), -1, 0), atol=1e-5)


def test_blur_keeps_constants_and_mean():
    x = jnp.full((20, 30), 0.7)
    np.testing.assert_allclose(np.asarray(gaussian_blur(x, 3.0)), 0.7, atol=1e-5)


def test_max_min_filters():
    x = np.zeros((9, 9), np.float32)
    x[4, 4] = 1.0
    dil = np.asarray(max_filter(jnp.asarray(x), 2))
    assert dil.sum() == 25 and dil[2:7, 2:7].min() == 1.0
    np.testing.assert_array_equal(np.asarray(min_filter(jnp.asarray(dil), 2)), x)


def test_guided_filter_flat_guide_is_box_mean():
    p = np.random.default_rng(1).random((16, 16)).astype(np.float32)
    q = guided_filter(jnp.asarray(p), jnp.full((16, 16), 0.5), radius=2, eps=1e-2)
    np.testing.assert_allclose(np.asarray(q), naive_box_mean(naive_box_mean(p, 2), 2), atol=1e-4)


def _edge_scene(h=64, w=64, edge=27):
    img = np.zeros((h, w, 3), np.float32)
    img[:, :edge] = (0.9, 0.8, 0.7)   # person on the left, dark background on the right
    img[:, edge:] = (0.1, 0.2, 0.15)
    gt = np.zeros((h, w), np.float32)
    gt[:, :edge] = 1.0
    return img, gt


@pytest.mark.parametrize("color", [True, False])
def test_fast_guided_upsample_sharpens_edges(color):
    img, gt = _edge_scene()
    small = resize(jnp.asarray(img), (16, 16))
    p_low = resize(jnp.asarray(gt), (16, 16))
    bilinear = np.asarray(resize(p_low, (64, 64), antialias=False))
    guided = np.asarray(fast_guided_upsample(p_low, small, jnp.asarray(img), radius=1, eps=1e-3, color=color))
    assert guided.shape == (64, 64) and guided.min() >= 0 and guided.max() <= 1
    assert np.abs(guided - gt).mean() < 0.5 * np.abs(bilinear - gt).mean()


def test_refine_alpha_options():
    a = jnp.asarray(np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32))
    hard = np.asarray(refine_alpha(a, AlphaOptions(threshold=0.5)))
    assert set(np.unique(hard)) <= {0.0, 1.0}
    grown = np.asarray(refine_alpha(jnp.asarray(hard), AlphaOptions(expand=2)))
    shrunk = np.asarray(refine_alpha(jnp.asarray(hard), AlphaOptions(expand=-2)))
    assert grown.sum() > hard.sum() > shrunk.sum()
    soft = np.asarray(refine_alpha(jnp.asarray(hard), AlphaOptions(feather=2.0)))
    assert 0 < soft.min() or soft.max() < 1 or len(np.unique(soft)) > 2


@pytest.mark.parametrize("mode", ["blur", "image", "color", "green", "mask"])
def test_composite_modes(mode):
    rng = np.random.default_rng(2)
    frame = jnp.asarray(rng.integers(0, 256, (24, 40, 3), dtype=np.uint8))
    bg = jnp.asarray(rng.integers(0, 256, (24, 40, 3), dtype=np.uint8))
    opts = CompositeOptions(mode=mode, blur_sigma=4.0, color=(10, 20, 30))
    ones, zeros = jnp.ones((24, 40)), jnp.zeros((24, 40))
    out1 = np.asarray(composite(frame, ones, opts, bg))
    out0 = np.asarray(composite(frame, zeros, opts, bg))
    assert out1.shape == (24, 40, 3) and out1.dtype == np.uint8
    if mode == "mask":
        assert out1.min() == 255 and out0.max() == 0
        return
    np.testing.assert_array_equal(out1, np.asarray(frame))  # alpha 1 keeps the person
    if mode == "image":
        np.testing.assert_array_equal(out0, np.asarray(bg))
    elif mode == "color":
        assert (out0 == np.array([10, 20, 30], np.uint8)).all()


def test_blur_background_does_not_bleed_person_colour():
    frame = np.zeros((64, 64, 3), np.uint8)
    frame[:, :32] = 255                       # bright person on the left
    alpha = np.zeros((64, 64), np.float32)
    alpha[:, :32] = 1.0
    out = np.asarray(composite(jnp.asarray(frame), jnp.asarray(alpha), CompositeOptions("blur", 8.0)))
    assert out[:, 36:].max() < 40             # background next to the person stays dark


def test_downscale_mean_blocks_and_edges():
    from seg_jax.ops.composite import downscale_mean
    x = np.random.default_rng(4).random((10, 7, 3)).astype(np.float32)
    got = np.asarray(downscale_mean(jnp.asarray(x), 4))
    padded = np.pad(x, ((0, 2), (0, 1), (0, 0)), mode="edge")
    want = padded.reshape(3, 4, 2, 4, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.parametrize("hw", [(64, 96), (50, 70)])
def test_render_blur_stages_equal_one_composite(hw):
    """render's separately jitted blur stages compute composite()'s blur-mode output."""
    rng = np.random.default_rng(5)
    frame = jnp.asarray(rng.integers(0, 256, hw + (3,)), jnp.uint8)
    alpha = jnp.asarray(rng.random(hw), jnp.float32)
    options = CompositeOptions("blur", 12.0)
    staged, _ = render(frame, alpha, None, None, jnp.float32(0.0), AlphaOptions(), options)
    whole = jax.jit(lambda f, a: composite(f, a, options))(frame, alpha)
    assert staged.shape == hw + (3,)
    assert np.abs(np.asarray(staged, np.int32) - np.asarray(whole, np.int32)).max() <= 1


def test_render_smoothing_and_cli_options():
    frame = jnp.zeros((16, 16, 3), jnp.uint8)
    a1, a0 = jnp.ones((16, 16)), jnp.zeros((16, 16))
    _, smoothed = render(frame, a1, a0, None, jnp.float32(0.25), AlphaOptions(), CompositeOptions("mask"))
    np.testing.assert_allclose(np.asarray(smoothed), 0.75, atol=1e-6)
    with pytest.raises(ValueError, match="unknown mode"):
        CompositeOptions("sepia")


def test_flicker_metric():
    a = [np.zeros((4, 4), np.float32), np.ones((4, 4), np.float32), np.ones((4, 4), np.float32)]
    assert flicker(a) == pytest.approx(0.5)
    # where the true mask changes, a change of alpha is motion, not flicker
    masks = [np.zeros((4, 4), np.uint8), np.full((4, 4), 255, np.uint8), np.full((4, 4), 255, np.uint8)]
    assert flicker(a, masks) == pytest.approx(0.0)
    m = FlickerMeter()
    for x in ([0, 0], [0.5, 0], [0.5, 0]):
        m.update(np.asarray(x, np.float32))
    assert m.value == pytest.approx(0.125)
    assert flicker([np.full((2, 2), 255, np.uint8), np.zeros((2, 2), np.uint8)]) == pytest.approx(1.0)


@pytest.mark.parametrize("src,dst,aa", [((36, 64), (16, 28), True), ((16, 28), (36, 64), False),
                                        ((20, 20), (7, 33), True), ((5, 9), (5, 9), True)])
def test_resize_matches_jax_image_resize(src, dst, aa):
    x = jnp.asarray(np.random.default_rng(3).random(src + (3,)).astype(np.float32))
    ref = jax.image.resize(x, dst + (3,), method="linear", antialias=aa)
    np.testing.assert_allclose(np.asarray(resize(x, dst, antialias=aa)), np.asarray(ref), atol=2e-5)


@pytest.mark.parametrize("r", [1, 2, 5, 12, 40])
def test_running_max_filter_equals_the_direct_window(r):
    import jax
    import jax.numpy as jnp

    from seg_jax.ops.filters import max_filter, min_filter
    x = jnp.asarray(np.random.default_rng(r).random((23, 57, 1)), jnp.float32)
    window = (2 * r + 1, 2 * r + 1, 1)
    direct = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, window, (1, 1, 1), "SAME")
    np.testing.assert_array_equal(np.asarray(max_filter(x, r)), np.asarray(direct))
    direct_min = jax.lax.reduce_window(x, jnp.inf, jax.lax.min, window, (1, 1, 1), "SAME")
    np.testing.assert_array_equal(np.asarray(min_filter(x, r)), np.asarray(direct_min))
