"""One orientation rule (upright by EXIF) for training/evaluation images and masks and the live tool's photos."""
import struct
import zlib

import cv2
import numpy as np
import pytest

from seg_jax.data.io import read_image, read_pair
from seg_jax.data.orientation import apply_orientation, exif_orientation
from seg_jax.live.sources import read_image as live_read_image


def _exif(orientation: int) -> bytes:
    """A little-endian TIFF block whose first IFD holds only the orientation tag."""
    return (b"II*\x00" + struct.pack("<IH", 8, 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)
            + struct.pack("<I", 0))


def jpeg_with_orientation(rgb: np.ndarray, orientation: int) -> bytes:
    """What a phone writes: the sensor's pixels as JPEG plus an EXIF APP1 segment with the orientation."""
    jpeg = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 100])[1].tobytes()
    app1 = b"Exif\x00\x00" + _exif(orientation)
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[2:]


def png_with_orientation(arr: np.ndarray, orientation: int) -> bytes:
    png = cv2.imencode(".png", arr)[1].tobytes()
    tiff = _exif(orientation)
    chunk = struct.pack(">I", len(tiff)) + b"eXIf" + tiff + struct.pack(">I", zlib.crc32(b"eXIf" + tiff))
    return png[:33] + chunk + png[33:]                     # after the 8-byte signature and the IHDR chunk


def _blocks(h, w, seed=0):
    rng = np.random.default_rng(seed)
    return np.kron(rng.integers(0, 256, (h // 8, w // 8, 3)), np.ones((8, 8, 1))).astype(np.uint8)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_turns_the_picture_as_opencv_and_viewers_do(orientation):
    data = jpeg_with_orientation(_blocks(24, 40), orientation)
    assert exif_orientation(data) == orientation
    upright = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)        # applies the tag
    stored = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)     # does not
    assert upright.shape[:2] == ((40, 24) if orientation >= 5 else (24, 40))
    np.testing.assert_array_equal(apply_orientation(stored, orientation), upright)


def test_a_rotated_phone_photo_pairs_with_the_mask_drawn_on_the_upright_picture(tmp_path):
    upright = _blocks(48, 32)                          # portrait, as the user sees it
    mask = np.zeros((48, 32), np.uint8)
    mask[8:40, 4:20] = 255                             # drawn on the upright picture
    sensor = np.ascontiguousarray(np.rot90(upright, 1))   # the phone stores it turned; orientation 6 turns it back
    (tmp_path / "p.jpg").write_bytes(jpeg_with_orientation(sensor, 6))
    cv2.imwrite(str(tmp_path / "p.png"), mask)
    pair = read_pair(str(tmp_path / "p.jpg"), str(tmp_path / "p.png"))
    assert pair["image"].shape == (48, 32, 3) and pair["mask"].shape == (48, 32, 1)
    error = np.abs(pair["image"].astype(int) - upright).mean()
    assert error < 12 < np.abs(pair["image"].astype(int) - upright[::-1, ::-1]).mean()   # upright, JPEG noise only
    np.testing.assert_array_equal(pair["image"], live_read_image(tmp_path / "p.jpg"))   # as the live tool reads it
    np.testing.assert_array_equal(pair["mask"][..., 0], mask)
    (tmp_path / "m.png").write_bytes(png_with_orientation(np.ascontiguousarray(np.rot90(mask, 1)), 6))
    np.testing.assert_array_equal(read_pair(str(tmp_path / "p.jpg"), str(tmp_path / "m.png"))["mask"][..., 0], mask)
    assert read_image(str(tmp_path / "p.png")).shape == (48, 32, 3)       # no tag: as stored
