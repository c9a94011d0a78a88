"""Checkpoint averaging: leaf-wise means of whole models, one clear line for a bad source."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from seg_jax.convert.average_weights import average_variables

REPO = Path(__file__).resolve().parents[1]


def test_the_average_is_the_leafwise_mean_and_keeps_dtypes():
    a = {"params": {"w": np.zeros((2, 2), np.float32)}, "batch_stats": {"mean": np.ones(3, np.float32)}}
    b = {"params": {"w": np.full((2, 2), 4.0, np.float32)}, "batch_stats": {"mean": np.full(3, 3.0, np.float32)}}
    out = average_variables([a, b])
    np.testing.assert_array_equal(out["params"]["w"], 2.0)
    np.testing.assert_array_equal(out["batch_stats"]["mean"], 2.0)
    assert out["params"]["w"].dtype == np.float32
    with pytest.raises(ValueError, match="at least one"):
        average_variables([])


def test_a_missing_source_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "seg_jax.convert.average_weights", "--model", "mobilenet", "--out",
                           str(tmp_path / "avg"), "seg_jax/weights/mobilenet", str(tmp_path / "nope")], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "average_weights: error:" in proc.stderr and "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "avg").exists()
