"""The one orientation rule for every image seg_jax reads (training and evaluation images and masks, the live
tool's photos): a photo is used the way viewers show it, upright by its EXIF orientation tag. Phones store the
sensor's pixels plus that tag; a mask drawn on the upright picture then lines up with the image only when both
are turned the same way. OpenCV's colour decode (``IMREAD_COLOR``, the live tool) applies the tag; its
unchanged decode (``IMREAD_UNCHANGED``, needed for 16-bit, alpha and palette masks) does not, so
:func:`exif_orientation` reads the tag from the encoded bytes (JPEG APP1, PNG eXIf, TIFF) and
:func:`apply_orientation` turns the decoded array the same way OpenCV does.
"""
from __future__ import annotations

import struct

import numpy as np

_ORIENTATION_TAG = 0x0112


def _from_tiff(tiff: bytes) -> int:
    """The orientation (1..8) in a TIFF/EXIF block's first IFD, 1 when absent or unreadable."""
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return 1
    end = "<" if tiff[:2] == b"II" else ">"
    (ifd,) = struct.unpack(end + "I", tiff[4:8])
    if ifd + 2 > len(tiff):
        return 1
    (count,) = struct.unpack(end + "H", tiff[ifd:ifd + 2])
    for i in range(count):
        entry = tiff[ifd + 2 + 12 * i: ifd + 14 + 12 * i]
        if len(entry) < 12:
            return 1
        tag, kind = struct.unpack(end + "HH", entry[:4])
        if tag == _ORIENTATION_TAG and kind == 3:          # SHORT
            (value,) = struct.unpack(end + "H", entry[8:10])
            return value if 1 <= value <= 8 else 1
    return 1


def exif_orientation(data: bytes) -> int:
    """EXIF orientation (1 = as stored .. 8) of encoded JPEG, PNG or TIFF bytes; 1 when there is none."""
    if data[:2] == b"\xff\xd8":                              # JPEG: walk the segments up to the image data
        at = 2
        while at + 4 <= len(data) and data[at] == 0xFF:
            marker = data[at + 1]
            if marker in (0xD9, 0xDA):                        # end of image / start of scan
                break
            (length,) = struct.unpack(">H", data[at + 2:at + 4])
            if marker == 0xE1 and data[at + 4:at + 10] == b"Exif\x00\x00":
                return _from_tiff(data[at + 10:at + 2 + length])
            at += 2 + length
        return 1
    if data[:8] == b"\x89PNG\r\n\x1a\n":                     # PNG: an eXIf chunk before the image data
        at = 8
        while at + 8 <= len(data):
            (length,) = struct.unpack(">I", data[at:at + 4])
            kind = data[at + 4:at + 8]
            if kind == b"eXIf":
                return _from_tiff(data[at + 8:at + 8 + length])
            if kind in (b"IDAT", b"IEND"):
                break
            at += 12 + length
        return 1
    return _from_tiff(data) if data[:4] in (b"II*\x00", b"MM\x00*") else 1


def apply_orientation(arr: np.ndarray, orientation: int) -> np.ndarray:
    """(H, W, ...) as stored -> upright (W, H, ... for orientations 5..8), as EXIF ``orientation`` says."""
    if orientation in (2, 4, 5, 7):                          # the mirrored ones: mirror left-right first
        arr = arr[:, ::-1]
    turns = {3: 2, 4: 2, 5: 1, 6: -1, 7: -1, 8: 1}.get(orientation, 0)   # quarter turns counter-clockwise
    return np.ascontiguousarray(np.rot90(arr, turns) if turns else arr)


__all__ = ["apply_orientation", "exif_orientation"]
