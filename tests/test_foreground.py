"""Clean edges against a new background: the foreground estimate, the replace blend with it, and light wrap.

The synthetic scene has a known person colour F, a known old background B and a wide soft alpha band, so the
estimate can be checked against the truth (the frame is exactly a F + (1 - a) B).
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seg_jax.ops.composite import AlphaOptions, CompositeOptions, composite, render
from seg_jax.ops.foreground import estimate_foreground, upsample
from seg_jax.ops.light_wrap import apply_light_wrap, wrap_fields


def scene(h=120, w=160, old=(0.0, 1.0, 0.0)):
    """-> (frame I float, true F, old background B, alpha): a person disc with a 12-pixel soft edge and a
    ragged, hair-like fringe, in colours that vary across the person, on a flat ``old`` colour."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    f = np.stack([0.6 + 0.2 * np.sin(xx / 15), 0.35 + 0.1 * np.cos(yy / 11), 0.3 + 0.15 * np.sin((xx + yy) / 20)],
                 -1)
    b = np.broadcast_to(np.asarray(old, np.float32), (h, w, 3))
    d = np.hypot(yy - 0.6 * h, xx - w / 2) - 0.35 * h
    fringe = 0.3 * np.sin(np.arctan2(yy - 0.6 * h, xx - w / 2) * 30) * (np.abs(d) < 8)
    a = np.clip(0.5 - d / 12 + fringe, 0, 1).astype(np.float32)
    image = a[..., None] * f + (1 - a[..., None]) * b
    return image.astype(np.float32), f.astype(np.float32), b, a


def band_of(a):
    return (a > 0.05) & (a < 0.95)


@pytest.fixture
def local_b(request, monkeypatch):
    """foreground.LOCAL_B set for one test; it is read when traced, so JAX's trace caches are cleared around."""
    from seg_jax.ops import foreground
    monkeypatch.setattr(foreground, "LOCAL_B", request.param)
    jax.clear_caches()
    yield request.param
    jax.clear_caches()


@pytest.mark.parametrize("local_b", [False, True], indirect=True)
def test_estimated_foreground_is_closer_to_the_truth_than_the_frame(local_b):
    image, f, _, a = scene(old=(0.95, 0.95, 0.95))  # a white wall
    band = band_of(a)
    assert band.sum() > 1000
    est, _ = jax.jit(estimate_foreground)(jnp.asarray(image), jnp.asarray(a))
    est = np.asarray(est)
    err_frame = np.abs(image - f)[band].mean()
    err_est = np.abs(est - f)[band].mean()
    assert err_est < 0.4 * err_frame, (err_est, err_frame)
    # where the alpha is 1 the frame is the person: kept as it is
    np.testing.assert_allclose(est[a == 1], image[a == 1], atol=1e-5)


def test_old_background_estimate_is_the_old_background():
    image, _, b, a = scene(old=(0.1, 0.8, 0.3))
    _, bg = estimate_foreground(jnp.asarray(image), jnp.asarray(a))
    outside = a < 0.5
    assert np.abs(np.asarray(bg) - b)[outside].mean() < 0.05


@pytest.mark.parametrize("mode", ["color", "image"])
def test_replace_with_the_foreground_leaves_less_of_the_old_colour(mode):
    image, f, _, a = scene(old=(0.0, 1.0, 0.0))  # a green screen
    band = band_of(a)
    blue = np.zeros_like(image)
    blue[..., 2] = 1.0
    frame = jnp.asarray(np.round(image * 255).astype(np.uint8))
    bg = jnp.asarray(np.round(blue * 255).astype(np.uint8))
    ideal = a[..., None] * f + (1 - a[..., None]) * blue
    out = {}
    for clean in (False, True):
        options = CompositeOptions(mode, color=(0, 0, 255), clean_edges=clean)
        out[clean] = np.asarray(composite(frame, jnp.asarray(a), options, bg)).astype(np.float32) / 255
    # the green left over: the output's green beyond the ideal composite's (a F + (1 - a) blue)
    spill_plain = (out[False] - ideal)[..., 1][band].mean()
    spill_clean = (out[True] - ideal)[..., 1][band].mean()
    assert spill_plain > 0.05
    assert spill_clean < 0.3 * spill_plain, (spill_clean, spill_plain)
    # and the colour is closer to the ideal composite overall in the band
    assert np.abs(out[True] - ideal)[band].mean() < 0.5 * np.abs(out[False] - ideal)[band].mean()


def test_light_wrap_zero_is_no_wrap_and_a_wrap_only_touches_the_edge_band():
    image, _, _, a = scene()
    frame = jnp.asarray(np.round(image * 255).astype(np.uint8))
    alpha = jnp.asarray(a)
    base = np.asarray(composite(frame, alpha, CompositeOptions("color", color=(0, 0, 255))))
    zero = np.asarray(composite(frame, alpha, CompositeOptions("color", color=(0, 0, 255), light_wrap=0.0)))
    np.testing.assert_array_equal(zero, base)
    fields = wrap_fields(alpha, jnp.zeros(image.shape), 4.0)
    np.testing.assert_array_equal(np.asarray(apply_light_wrap(jnp.asarray(image), alpha, fields, 0.0)), image)

    wrapped = np.asarray(composite(frame, alpha, CompositeOptions("color", color=(0, 0, 255), light_wrap=0.8)))
    changed = np.abs(wrapped.astype(int) - base).max(axis=-1) > 1
    assert changed.sum() > 100
    assert not changed[a == 0].any()                              # the background is not touched
    yy, xx = np.mgrid[0:a.shape[0], 0:a.shape[1]]
    deep = np.hypot(yy - 0.6 * a.shape[0], xx - a.shape[1] / 2) < 0.35 * a.shape[0] - 25
    assert deep.sum() > 100 and not changed[deep].any()           # nor deep inside the person
    edge = changed & (a > 0.5)
    assert (wrapped[edge, 2].astype(int) > base[edge, 2]).mean() > 0.95  # the edge takes the blue light


def test_bad_light_wrap_is_refused():
    with pytest.raises(ValueError, match=r"light_wrap must be in \[0, 1\]"):
        CompositeOptions("color", light_wrap=1.5)


@pytest.mark.parametrize("hw", [(64, 96), (50, 70)])
@pytest.mark.parametrize("mode,clean,wrap", [("color", True, 0.0), ("image", True, 0.4), ("green", False, 0.4)])
def test_render_replace_stages_equal_one_composite(hw, mode, clean, wrap):
    rng = np.random.default_rng(5)
    frame = jnp.asarray(rng.integers(0, 256, hw + (3,)), jnp.uint8)
    bg = jnp.asarray(rng.integers(0, 256, hw + (3,)), jnp.uint8)
    alpha = jnp.asarray(rng.random(hw), jnp.float32)
    options = CompositeOptions(mode, color=(9, 99, 199), clean_edges=clean, light_wrap=wrap)
    staged, _ = render(frame, alpha, None, bg, jnp.float32(0.0), AlphaOptions(), options)
    whole = jax.jit(lambda f, a, b: composite(f, a, options, b))(frame, alpha, bg)
    assert staged.shape == hw + (3,)
    assert np.abs(np.asarray(staged, np.int32) - np.asarray(whole, np.int32)).max() <= 1


def test_upsample_is_bilinear_on_the_block_grid():
    from seg_jax.ops.resize import resize
    x = jnp.asarray(np.random.default_rng(1).random((7, 9, 2)), jnp.float32)
    for k in (2, 4):
        want = resize(x, (7 * k, 9 * k), antialias=False)[:7 * k - 1, :9 * k - 3]
        np.testing.assert_allclose(np.asarray(upsample(x, k, (7 * k - 1, 9 * k - 3))), np.asarray(want), atol=1e-6)


@pytest.mark.parametrize("local_b", [True], indirect=True)
def test_the_local_background_option_changes_the_estimate(local_b):
    image, _, _, a = scene(old=(0.95, 0.95, 0.95))
    with_local = np.asarray(estimate_foreground(jnp.asarray(image), jnp.asarray(a))[0])
    from seg_jax.ops import foreground
    foreground.LOCAL_B = False  # restored by the fixture's monkeypatch
    jax.clear_caches()
    without = np.asarray(estimate_foreground(jnp.asarray(image), jnp.asarray(a))[0])
    assert np.abs(with_local - without).max() > 1e-3


def test_spill_bench_measures_less_old_colour_after_cleaning():
    from seg_jax.bench import spill
    image, _, _, a = scene(h=96, w=128)
    shots = [{"name": "synthetic", "image": np.round(image * 255).astype(np.uint8), "alpha": a}]
    result = spill.evaluate(shots, (0, 255, 0), (0, 0, 255), 0.3)
    mean = result["mean"]["true"]
    assert mean["plain"]["old_left"] > 0.03
    assert mean["clean"]["old_left"] < 0.3 * mean["plain"]["old_left"]
    assert mean["plain+wrap"]["old_left"] < mean["plain"]["old_left"]  # the wrap brings in the new colour
    assert len(result["_crops"]) == 1
