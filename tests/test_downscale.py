"""python -m seg_jax.data.downscale: a smaller copy of a data tree with the same names and binary masks kept binary."""
import os
import subprocess
import sys

import cv2
import numpy as np

from seg_jax.data.downscale import downscale_tree, scaled_size


def _tree(root):
    rng = np.random.default_rng(0)
    for sub, hw in (("portraits", (800, 600)), ("people", (300, 1000))):
        os.makedirs(root / sub / "images")
        os.makedirs(root / sub / "masks")
        for i in range(2):
            cv2.imwrite(str(root / sub / "images" / f"p{i}.jpg"), rng.integers(0, 255, hw + (3,), np.uint8))
            mask = np.zeros((hw[0] // 2, hw[1] // 2), np.uint8)  # masks smaller than their image, same aspect
            mask[10:-10, 20:-20] = 255
            if sub == "portraits":
                mask = cv2.GaussianBlur(mask, (31, 31), 0)
            cv2.imwrite(str(root / sub / "masks" / f"p{i}.png"), mask)
    os.makedirs(root / "backgrounds")
    cv2.imwrite(str(root / "backgrounds" / "b.jpg"), rng.integers(0, 255, (1080, 1920, 3), np.uint8))
    os.makedirs(root / "cutouts")
    cv2.imwrite(str(root / "cutouts" / "c.png"), rng.integers(0, 255, (50, 40, 4), np.uint8))
    os.makedirs(root / "davis" / "seq" / "frames")
    os.makedirs(root / "davis" / "seq" / "masks")
    cv2.imwrite(str(root / "davis" / "seq" / "frames" / "00000.jpg"), rng.integers(0, 255, (480, 854, 3), np.uint8))
    cv2.imwrite(str(root / "davis" / "seq" / "masks" / "00000.png"), np.where(rng.random((480, 854)) > 0.5, 255, 0))
    (root / "README.md").write_text("data")


def test_scaled_size_keeps_aspect_and_never_enlarges():
    assert scaled_size(800, 600, 384) == (384, 288)
    assert scaled_size(100, 50, 384) == (100, 50)


def test_downscale_tree(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _tree(src)
    counts = downscale_tree(str(src), str(dst), max_side=256)
    assert counts["pairs"] == 5 and counts["images"] == 1
    img = cv2.imread(str(dst / "people" / "images" / "p0.jpg"))
    mask = cv2.imread(str(dst / "people" / "masks" / "p0.png"), cv2.IMREAD_GRAYSCALE)
    assert img.shape[:2] == mask.shape == (77, 256)
    assert set(np.unique(mask)) <= {0, 255}  # binary stays binary
    soft = cv2.imread(str(dst / "portraits" / "masks" / "p0.png"), cv2.IMREAD_GRAYSCALE)
    assert soft.shape == (256, 192) and len(np.unique(soft)) > 2  # soft mattes stay soft
    assert max(cv2.imread(str(dst / "backgrounds" / "b.jpg")).shape[:2]) == 256
    assert cv2.imread(str(dst / "davis" / "seq" / "masks" / "00000.png"), cv2.IMREAD_GRAYSCALE).shape == (144, 256)
    assert (dst / "cutouts" / "c.png").read_bytes() == (src / "cutouts" / "c.png").read_bytes()
    assert (dst / "README.md").exists()
    # an existing output is never overwritten
    (dst / "people" / "images" / "p0.jpg").write_bytes(b"kept")
    downscale_tree(str(src), str(dst), max_side=256)
    assert (dst / "people" / "images" / "p0.jpg").read_bytes() == b"kept"


def test_cli_errors_are_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "seg_jax.data.downscale", "--src", str(tmp_path / "nope"),
                           "--dst", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "no such folder" in proc.stderr and "Traceback" not in proc.stderr
