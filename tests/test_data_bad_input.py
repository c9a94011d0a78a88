"""Bad input: every case is either converted (and counted) or a one-line error naming the file and the fix."""
import collections

import cv2
import numpy as np
import pytest

from seg_jax.data import folder, io


def _jpeg(hw=(16, 20)):
    ok, buf = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, hw + (3,), dtype=np.uint8))
    return buf.tobytes()


def _png(arr):
    ok, buf = cv2.imencode(".png", arr)
    return buf.tobytes()


def _mask(hw=(16, 20)):
    m = np.zeros(hw, np.uint8)
    m[4:12, 5:15] = 255
    return m


def make_folder(tmp_path, n=3):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for i in range(n):
        (tmp_path / "images" / f"ok{i}.jpg").write_bytes(_jpeg())
        (tmp_path / "masks" / f"ok{i}.png").write_bytes(_png(_mask()))
    return tmp_path


def test_corrupt_truncated_zero_byte_and_non_image_files_are_skipped_and_counted(tmp_path):
    root = make_folder(tmp_path)
    good = _jpeg()
    (root / "images" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (root / "images" / "zero.jpg").write_bytes(b"")
    (root / "images" / "random.jpg").write_bytes(b"this is not a jpeg at all")
    (root / "images" / "notes.txt").write_text("hello")
    (root / "images" / "nomask.jpg").write_bytes(good)
    for stem in ("truncated", "zero", "random", "notes"):
        (root / "masks" / f"{stem}.png").write_bytes(_png(_mask()))
    stats = collections.Counter()
    pairs = folder.list_pairs(str(root), stats)
    assert [p.stem for p in pairs] == ["ok0", "ok1", "ok2"]
    assert stats["skipped_image_truncated"] == 1
    assert stats["skipped_image_zero_byte"] == 1
    assert stats["skipped_image_not_an_image"] == 2       # random bytes named .jpg + notes.txt
    assert stats["skipped_image_without_mask"] == 1
    assert stats["skipped_mask_without_image"] == 4
    assert str(root / "images" / "truncated.jpg") in stats["examples:skipped_image_truncated"]


def test_corrupt_body_is_a_clear_error_naming_the_file(tmp_path):
    path = tmp_path / "bad.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00garbage" * 20 + b"\xff\xd9")   # looks complete, is not
    assert io.check_file(str(path)) is None
    with pytest.raises(io.BadInputError, match="bad.jpg: not a decodable image"):
        io.read_image(str(path))
    zero = tmp_path / "zero.png"
    zero.write_bytes(b"")
    with pytest.raises(io.BadInputError, match="zero.png: zero-byte"):
        io.read_image(str(zero))


def test_mask_smaller_same_aspect_is_resized_nearest(tmp_path):
    (tmp_path / "i.jpg").write_bytes(_jpeg((40, 60)))
    (tmp_path / "m.png").write_bytes(_png(_mask((20, 30))))
    stats = collections.Counter()
    ex = io.read_pair(str(tmp_path / "i.jpg"), str(tmp_path / "m.png"), stats)
    assert ex["mask"].shape == (40, 60, 1)
    assert set(np.unique(ex["mask"])) == {0, 255}               # nearest: still binary
    assert stats["mask_resized_nearest"] == 1


def test_mask_with_other_aspect_is_an_error_naming_the_file(tmp_path):
    (tmp_path / "i.jpg").write_bytes(_jpeg((40, 60)))
    (tmp_path / "m.png").write_bytes(_png(_mask((40, 40))))
    with pytest.raises(io.BadInputError, match=r"m\.png: mask is 40x40 but its image is 60x40"):
        io.read_pair(str(tmp_path / "i.jpg"), str(tmp_path / "m.png"))


@pytest.mark.parametrize("kind", ["gray", "rgba", "16bit"])
def test_gray_rgba_16bit_images_are_converted_and_counted(tmp_path, kind):
    base = np.random.default_rng(0).integers(0, 255, (8, 10), dtype=np.uint8)
    arr = {"gray": base,
           "rgba": np.dstack([base, base, base, np.full_like(base, 7)]),
           "16bit": np.dstack([base, base, base]).astype(np.uint16) * 257}[kind]
    path = tmp_path / f"{kind}.png"
    path.write_bytes(_png(arr))
    stats = collections.Counter()
    img = io.read_image(str(path), stats)
    assert img.shape == (8, 10, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img[..., 0], base)
    key = {"gray": "image_gray_to_rgb", "rgba": "image_rgba_alpha_dropped", "16bit": "image_16bit_to_8bit"}[kind]
    assert stats[key] == 1


def test_masks_stored_as_rgb_palette_16bit_or_01(tmp_path):
    m = _mask((8, 10))
    cases = {
        "gray_as_rgb.png": (np.dstack([m, m, m]), "mask_rgb_gray"),
        "coloured.png": (np.dstack([np.zeros_like(m), np.zeros_like(m), m // 2]), "mask_colour_binarised"),
        "wide.png": (m.astype(np.uint16) * 257, "mask_16bit_to_8bit"),
        "zero_one.png": (m // 255, "mask_01_to_255"),
    }
    for name, (arr, key) in cases.items():
        (tmp_path / name).write_bytes(_png(arr))
        stats = collections.Counter()
        out = io.read_mask(str(tmp_path / name), stats=stats)
        np.testing.assert_array_equal(out[..., 0], m, err_msg=name)
        assert stats[key] == 1, (name, stats)


def test_palette_mask(tmp_path):
    pil = pytest.importorskip("PIL.Image")
    m = _mask((8, 10))
    img = pil.fromarray((m > 0).astype(np.uint8), mode="P")
    img.putpalette([0, 0, 0, 128, 0, 0] + [0, 0, 0] * 254)      # DAVIS / VOC style: index 1 = dark red
    img.save(tmp_path / "palette.png")
    stats = collections.Counter()
    out = io.read_mask(str(tmp_path / "palette.png"), stats=stats)
    np.testing.assert_array_equal(out[..., 0], m)
    assert stats["mask_colour_binarised"] == 1


def test_cutout_without_alpha_is_an_error(tmp_path):
    (tmp_path / "c.png").write_bytes(_png(np.zeros((4, 4, 3), np.uint8)))
    with pytest.raises(io.BadInputError, match="c.png: cutout has no alpha"):
        io.read_rgba_cutout(str(tmp_path / "c.png"))


def test_empty_folder_and_missing_folders(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(io.BadInputError, match="no usable image/mask pairs"):
        folder.list_pairs(str(tmp_path))
    with pytest.raises(io.BadInputError, match="no images/ and masks/"):
        folder.list_pairs(str(tmp_path / "nowhere"))


def test_missing_split_file_names_it(tmp_path):
    root = make_folder(tmp_path)
    (root / "segmentation").mkdir()
    (root / "segmentation" / "train.txt").write_text("ok0\n")
    with pytest.raises(io.BadInputError, match=r"val\.txt: split file missing"):
        folder.split_pairs(str(root), "train")


def test_pipeline_trains_through_skipped_files(tmp_path):
    from seg_jax import data
    from seg_jax.configs import default
    root = make_folder(tmp_path, n=10)
    (root / "images" / "zero.jpg").write_bytes(b"")
    (root / "masks" / "zero.png").write_bytes(_png(_mask()))
    c = default.apply_variant(default.get_default_config(), "tiny")
    c.data.source, c.data.folder = "folder", str(root)
    batch = next(data.build_train_iterator(c, seed=0))
    assert batch["image"].shape == (2, 64, 64, 3)


def test_preview_grid_writes_png(tmp_path):
    from seg_jax.configs import default
    from seg_jax.data import preview
    c = default.apply_variant(default.get_default_config(), "tiny")
    out = tmp_path / "grid.png"
    canvas = preview.write_preview(c, str(out), split="val")
    assert out.exists() and cv2.imread(str(out)).shape == canvas.shape
    c.model.name, c.data.clip_length = "convlstm", 3
    clips = preview.write_preview(c, str(tmp_path / "clips.png"))
    assert clips.shape == (2 * 68 + 4, 3 * 68 + 4, 3)      # batch of 2 clips -> 2 rows of 3 frames


def test_a_pair_that_passes_the_listing_but_does_not_decode_is_skipped_when_read(tmp_path, caplog):
    """Policy: never stop a run minutes in for one file; the reader takes the next example and counts it."""
    root = make_folder(tmp_path)
    (root / "images" / "ok1.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00garbage" * 20 + b"\xff\xd9")
    source = folder.PairSource(folder.list_pairs(str(root)), "test")
    assert len(source) == 3                               # the byte check cannot see it
    with caplog.at_level("WARNING"):
        first, second, again = source[0], source[1], source[1]
    np.testing.assert_array_equal(second["image"], source[2]["image"])   # ok1 -> the next pair, ok2
    assert source.stats["skipped_undecodable"] == 2
    assert sum("ok1.jpg" in r.getMessage() for r in caplog.records) == 1  # warned once
    for name in ("ok0", "ok2"):
        (root / "images" / f"{name}.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage\xff\xd9")
    with pytest.raises(io.BadInputError, match="none of its 3 pairs decodes"):
        source[0]


def test_a_clip_with_an_undecodable_frame_is_skipped(tmp_path):
    from seg_jax.data import clips
    for seq in ("a", "b"):
        for t in range(3):
            (tmp_path / seq / "frames").mkdir(parents=True, exist_ok=True)
            (tmp_path / seq / "masks").mkdir(exist_ok=True)
            (tmp_path / seq / "frames" / f"{t:05d}.jpg").write_bytes(_jpeg())
            (tmp_path / seq / "masks" / f"{t:05d}.png").write_bytes(_png(_mask()))
    (tmp_path / "a" / "frames" / "00001.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage\xff\xd9")
    source = clips.ClipSource(clips.list_davis(str(tmp_path)), 3)
    assert len(source) == 2 and source[0]["image"].shape == (3, 16, 20, 3)
    assert source.stats["skipped_undecodable"] == 1
