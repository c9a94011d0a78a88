"""The metrics themselves, on small hand-built masks with answers worked out by hand."""
import numpy as np
import pytest

from seg_jax.evaluation.metrics import probability_sums, summarize
from seg_jax.evaluation.metrics_temporal import dtssd, flicker


def _metrics(pred, true):
    return summarize({k: float(v) for k, v in probability_sums(np.asarray(pred, np.float32)[None],
                                                                np.asarray(true, np.float32)[None]).items()})


def test_dice_iou_miou_mad_on_a_known_case():
    # 4x4: truth = left two columns (8 px); prediction = top two rows of the left 3 columns (6 px), of which
    # 4 px hit the truth. Person: inter 4, union 10. Background: 16 - 6 - 8 + 4 = 6 px agree, union 16 - 4 = 12.
    true = np.zeros((4, 4))
    true[:, :2] = 1
    pred = np.zeros((4, 4))
    pred[:2, :3] = 0.9
    m = _metrics(pred, true)
    assert m["dice"] == pytest.approx(2 * 4 / (6 + 8))
    assert m["iou"] == pytest.approx(4 / 10)
    assert m["background_iou"] == pytest.approx(6 / 12)
    assert m["miou"] == pytest.approx((4 / 10 + 6 / 12) / 2)
    # MAD: 4 hits at |0.9 - 1| = 0.1, 2 false positives at 0.9, 4 misses at 1, 6 true background at 0
    assert m["mad"] == pytest.approx((4 * 0.1 + 2 * 0.9 + 4 * 1.0) / 16)


def test_perfect_and_empty_predictions():
    true = np.zeros((8, 8))
    true[2:6, 2:6] = 1
    perfect = _metrics(true, true)
    assert perfect["dice"] == pytest.approx(1) and perfect["miou"] == pytest.approx(1)
    assert perfect["boundary_f"] == pytest.approx(1) and perfect["mad"] == 0
    empty = _metrics(np.zeros((8, 8)), true)
    assert empty["dice"] == pytest.approx(0, abs=1e-6) and empty["iou"] == pytest.approx(0, abs=1e-6)
    assert empty["background_iou"] == pytest.approx(48 / 64)
    assert empty["boundary_f"] == pytest.approx(0, abs=1e-6)


def test_threshold_is_half():
    true = np.ones((2, 2))
    assert _metrics(np.full((2, 2), 0.5), true)["dice"] == pytest.approx(1)
    assert _metrics(np.full((2, 2), 0.49), true)["dice"] == pytest.approx(0, abs=1e-6)


def test_boundary_f_counts_boundary_pixels_within_the_tolerance():
    # 100x100 -> tolerance radius round(0.008 * 141.4) = 1 pixel. A square shifted by 1 px matches fully;
    # shifted by 5 px, only the boundary pixels still within 1 px of the other boundary match.
    true = np.zeros((100, 100))
    true[20:80, 20:80] = 1
    shifted1 = np.roll(true, 1, axis=1)
    assert _metrics(shifted1, true)["boundary_f"] == pytest.approx(1)
    shifted5 = np.roll(true, 5, axis=1)
    f = _metrics(shifted5, true)["boundary_f"]
    # each boundary: 236 px; matched: the two horizontal edges minus what lies beyond the other square
    # (rows 20 and 79: 60 px each, of which 54-55 overlap within 1 px) -> about 110 / 236
    assert 0.40 < f < 0.52


def test_flicker_counts_only_pixels_whose_truth_is_steady():
    a0, a1 = np.zeros((2, 2)), np.array([[0.5, 0.0], [0.0, 1.0]])
    assert flicker([a0, a1]) == pytest.approx((0.5 + 1.0) / 4)
    g0 = np.zeros((2, 2), np.uint8)
    g1 = np.array([[0, 0], [0, 255]], np.uint8)      # the person really arrived at pixel (1, 1)
    assert flicker([a0, a1], [g0, g1]) == pytest.approx(0.5 / 3)


def test_dtssd_with_rvm_scaling():
    g = [np.zeros((2, 2)), np.array([[0, 0], [0, 1.0]])]
    assert dtssd([x.copy() for x in g], g) == 0.0                     # alpha moves exactly as the truth
    a = [np.zeros((2, 2)), np.array([[0.5, 0], [0, 1.0]])]
    assert dtssd(a, g) == pytest.approx(100 * np.sqrt(0.25 / 4))       # one pixel changed by 0.5 too much
    # mean over frame pairs: a second pair with no error halves it
    assert dtssd(a + [a[1]], g + [g[1]]) == pytest.approx(100 * np.sqrt(0.25 / 4) / 2)
    uint8 = [(x * 255).astype(np.uint8)[..., None] for x in g]
    assert dtssd(a, uint8) == pytest.approx(100 * np.sqrt(0.25 / 4))
    with pytest.raises(ValueError, match="differ in size"):
        dtssd([np.zeros((2, 2))], [np.zeros((3, 3))])
