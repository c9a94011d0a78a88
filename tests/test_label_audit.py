"""The label audit: regions where both teachers disagree with the label become ignore masks (data), with counts;
the loader checks sizes; teachers are faked (no peer virtualenv needed)."""
import json

import cv2
import numpy as np
import pytest

from seg_jax.data import label_audit
from seg_jax.data.ignore_masks import load_ignore_mask, relative_key


def _scene():
    """A 100x100 label with one person; a bystander (rows 10-40, cols 70-90) the label misses; a label blob
    (rows 80-95, cols 5-25) neither teacher sees; a thin sliver of disagreement along the person's edge."""
    label = np.zeros((100, 100), bool)
    label[30:90, 30:60] = True
    label[80:95, 5:25] = True
    teacher = np.zeros((100, 100), np.float32)
    teacher[30:90, 29:61] = 0.9          # the person, one column wider each side: a sliver, not a region
    teacher[10:40, 70:90] = 0.8          # the bystander
    return label, teacher


def test_regions_both_teachers_agree_on_are_flagged_and_slivers_are_not():
    label, teacher = _scene()
    got = label_audit.flag_regions(label, teacher, teacher * 0.9, min_area=0.01, open_fraction=0.05)
    assert [r["bbox"] for r in got["missed_person"]] == [[70, 10, 20, 30]]
    assert [r["bbox"] for r in got["extra_person"]] == [[5, 80, 20, 15]]
    assert got["pixels"] == {"missed_person": 600, "extra_person": 300}
    assert got["ignore"].sum() == 900 and not got["ignore"][30:90, 29].any()


def test_one_teacher_alone_flags_nothing():
    label, teacher = _scene()
    got = label_audit.flag_regions(label, teacher, np.zeros_like(teacher) + label * 0.9, min_area=0.01)
    # the bystander is seen by teacher A only, the blob missed by A only: nothing is flagged
    assert got["missed_person"] == got["extra_person"] == [] and not got["ignore"].any()
    with pytest.raises(ValueError, match="do not match the label"):
        label_audit.flag_regions(label, teacher[:50], teacher)


def _data(root):
    label, _ = _scene()
    for source, n in (("people", 3), ("davis17", 2)):
        for i in range(n):
            if source == "people":
                img, msk = root / source / "images" / f"p{i}.jpg", root / source / "masks" / f"p{i}.png"
            else:
                clip = root / source / "clip"
                img, msk = clip / "frames" / f"{i:05d}.jpg", clip / "masks" / f"{i:05d}.png"
            img.parent.mkdir(parents=True, exist_ok=True)
            msk.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(img), np.full((100, 100, 3), 90, np.uint8))
            cv2.imwrite(str(msk), label.astype(np.uint8) * 255)
    cv2.imwrite(str(root / "people" / "images" / "lonely.jpg"), np.zeros((8, 8, 3), np.uint8))


def test_audit_writes_masks_summary_and_resumes(tmp_path, monkeypatch, capsys):
    _data(tmp_path / "data")
    label, teacher = _scene()
    calls = []

    def teachers(images, sequences, modnet_short, install):
        calls.append(list(sequences))
        return [teacher] * len(images), [teacher] * len(images), {"mediapipe": "fake", "modnet": {}}
    monkeypatch.setattr(label_audit, "_teachers", teachers)
    out = tmp_path / "audit"
    argv = ["--data_root", str(tmp_path / "data"), "--out", str(out), "--sources", "people,davis17",
            "--chunk", "2", "--min_area", "0.01", "--open_fraction", "0.05", "--results", str(tmp_path / "res")]
    label_audit.main(argv)
    printed = capsys.readouterr()
    assert "people: 1 images have no mask and were skipped" in printed.err
    assert calls == [["", ""], [""], ["clip", "clip"]]
    summary = json.loads((out / "summary.json").read_text())
    people = summary["sources"]["people"]
    assert people["images"] == 3 and people["images_flagged"] == 3 and people["images_without_mask"] == 1
    assert people["missed_person"] == {"images": 3, "regions": 3, "pixels": 1800, "pixel_share": 0.06}
    assert people["command"].startswith("python -m seg_jax.data.label_audit --data_root")
    assert people["settings"]["min_area"] == 0.01
    assert "python -m seg_jax.data.label_audit" in (out / "README.md").read_text()
    assert (tmp_path / "res" / "contact_sheet.png").exists() and (tmp_path / "res" / "summary.json").exists()
    image = str(tmp_path / "data" / "davis17" / "clip" / "frames" / "00001.jpg")
    assert (out / "davis17" / "clip" / "frames" / "00001.png").exists()
    ignore = load_ignore_mask(out, "davis17", image, (100, 100, 1))
    assert ignore.dtype == bool and ignore.sum() == 900
    label8 = label.astype(np.uint8)[..., None] * 255
    missed = load_ignore_mask(out, "davis17", image, (100, 100), directions=["missed_person"], label=label8)
    extra = load_ignore_mask(out, "davis17", image, (100, 100), directions=["extra_person"], label=label)
    assert missed.sum() == 600 and extra.sum() == 300 and not (missed & extra).any()
    with pytest.raises(ValueError, match="needs the label"):
        load_ignore_mask(out, "davis17", image, (100, 100), directions=["missed_person"])
    label_audit.main(argv)                                    # rerun: every chunk is done, no teacher call
    assert len(calls) == 3
    with pytest.raises(SystemExit) as e:
        label_audit.main(argv[:-2] + ["--min_area", "0.02"])
    assert e.value.code == 2 and "other settings" in capsys.readouterr().err    # a user error: exit code 2


def test_loader_none_when_not_flagged_and_one_line_on_a_size_mismatch(tmp_path):
    path = tmp_path / "people" / "images" / "a.png"
    path.parent.mkdir(parents=True)
    cv2.imwrite(str(path), np.full((6, 8), 255, np.uint8))
    assert relative_key("people", "/x/people/images/a.jpg") == "images/a.png"
    assert load_ignore_mask(tmp_path, "people", "/x/people/images/b.jpg", (6, 8)) is None
    assert load_ignore_mask(tmp_path, "people", "/x/people/images/a.jpg", (6, 8)).all()
    with pytest.raises(ValueError, match=r"ignore mask is 8x6 but its label is 9x6; .* rerun") as e:
        load_ignore_mask(tmp_path, "people", "/x/people/images/a.jpg", (6, 9))
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="not inside a folder named 'people'"):
        load_ignore_mask(tmp_path, "people", "/x/other/a.jpg", (6, 8))


def test_training_pairs_carry_the_audit_as_ignore_maps(tmp_path):
    from seg_jax.configs import default
    from seg_jax.data import folder, real
    from seg_jax.data.ignore_masks import AuditedPairSource
    people = tmp_path / "data" / "people"
    for stem in ("a", "b"):
        (people / "images").mkdir(parents=True, exist_ok=True)
        (people / "masks").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(people / "images" / f"{stem}.jpg"), np.full((20, 30, 3), 90, np.uint8))
        mask = np.zeros((20, 30), np.uint8)
        mask[:, 20:] = 255
        cv2.imwrite(str(people / "masks" / f"{stem}.png"), mask)
    flagged = np.zeros((20, 30), np.uint8)
    flagged[5:10, 2:8] = 255        # a missed person (label background)
    flagged[5:10, 22:26] = 255      # an extra person (label person)
    audit = tmp_path / "audit" / "people" / "images"
    audit.mkdir(parents=True)
    cv2.imwrite(str(audit / "a.png"), flagged)
    pairs = folder.list_pairs(str(people))
    src = AuditedPairSource(pairs, "people", tmp_path / "audit", ["missed_person"])
    a, b = src[0], src[1]
    assert a["ignore"].shape == (20, 30, 1) and a["ignore"][5:10, 2:8].min() == 255
    assert a["ignore"].sum() == 255 * 30                         # only the missed-person region
    assert not b["ignore"].any()                                 # an unflagged image ignores nothing
    c = default.get_default_config()
    c.data.label_audit.dir = str(tmp_path / "audit")
    assert isinstance(real._audited(c, folder.PairSource(pairs, "people")), AuditedPairSource)
    assert not isinstance(real._audited(c, folder.PairSource(pairs, "selfies")), AuditedPairSource)
    c.data.label_audit.dir = str(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="no label audit of 'people'"):
        real._audited(c, folder.PairSource(pairs, "people"))
