"""Build coco/2017_panoptic and davis/480p with TFDS's own builders from tiny fake downloads (no network), so
seg_jax's TensorFlow-free readers can be checked against records that the real builders wrote.

Not a pytest test (it needs TensorFlow, which the test environment does not have). In a separate virtualenv:

  python -m venv /tmp/venv-tf && /tmp/venv-tf/bin/pip install tensorflow-cpu tensorflow-datasets==4.9.10 \
      importlib_resources pillow
  /tmp/venv-tf/bin/python tests/manual/build_with_real_tfds_builders.py /tmp/real_tfds /tmp/real_fake
  python -m seg_jax.data.prepare coco --data_dir /tmp/real_tfds     # writes seg_jax's index, then:
  python -m seg_jax.data.prepare davis17 --data_dir /tmp/real_tfds
  python -m seg_jax.data.prepare --list --data_dir /tmp/real_tfds

Then read them with seg_jax.data.public.coco.CocoPeople / davis17.DavisFrames: COCO train record with the person
box has 192 person pixels, the crowd record 480 ignored + 180 person pixels (segment id 70000), the giraffe record
is a negative; DAVIS india has 3 persons (576 px a frame), bmx-trees 1 (192 px, its bicycle is background).
"""
import json
import os
import sys

import numpy as np
import tensorflow_datasets as tfds
from etils import epath
from PIL import Image

out, fake = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(0)

# ---- DAVIS fake archive
root = os.path.join(fake, "davis", "DAVIS")
videos = {"train": {"bmx-trees": (1, 2), "india": (1, 2, 3)}, "val": {"dance-twirl": (1,)}}
for split, vids in videos.items():
    os.makedirs(f"{root}/ImageSets/2017", exist_ok=True)
    with open(f"{root}/ImageSets/2017/{split}.txt", "w") as f:
        f.write("\n".join(vids) + "\n")
    for v, ids in vids.items():
        os.makedirs(f"{root}/JPEGImages/480p/{v}", exist_ok=True)
        os.makedirs(f"{root}/Annotations/480p/{v}", exist_ok=True)
        for t in range(3):
            frame = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(frame).save(f"{root}/JPEGImages/480p/{v}/{t:05d}.jpg")
            seg = np.zeros((32, 32), np.uint8)
            for j, oid in enumerate(ids):
                seg[:, 6 * j + t: 6 * j + t + 6] = oid
            p = Image.fromarray(seg, mode="P"); p.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] + [0] * 756)
            p.save(f"{root}/Annotations/480p/{v}/{t:05d}.png")

# ---- COCO fake archives
cats = [{"id": 1, "name": "person", "isthing": 1}, {"id": 2, "name": "bicycle", "isthing": 1},
        {"id": 25, "name": "giraffe", "isthing": 1}] + [{"id": 200 + i, "name": f"stuff{i}", "isthing": 0}
                                                        for i in range(130)]
coco_paths = {}
for split, images in {"train": [[(1, 1, 0, (4, 20, 4, 16)), (2, 2, 0, (20, 30, 20, 40))],
                                  [(7, 25, 0, (2, 30, 2, 30))],
                                  [(3, 1, 1, (0, 10, 0, 48)), (70000, 1, 0, (12, 30, 10, 20))]],
                      "validation": [[(5, 1, 0, (8, 24, 8, 24))]]}.items():
    name = "train2017" if split == "train" else "val2017"
    img_dir = os.path.join(fake, "coco", f"{split}_images"); os.makedirs(f"{img_dir}/{name}", exist_ok=True)
    ann_dir = os.path.join(fake, "coco", f"{split}_ann"); os.makedirs(f"{ann_dir}/annotations", exist_ok=True)
    pan_dir = os.path.join(fake, "coco", f"{split}_pan"); os.makedirs(f"{pan_dir}/panoptic_{name}", exist_ok=True)
    infos, anns = [], []
    for k, segs in enumerate(images):
        iid = 1000 * (split == "validation") + k + 1
        fn = f"{iid:012d}"
        Image.fromarray(rng.integers(0, 255, (32, 48, 3), dtype=np.uint8)).save(f"{img_dir}/{name}/{fn}.jpg")
        ids = np.zeros((32, 48), np.int64)
        for sid, _, _, (y0, y1, x0, x1) in segs:
            ids[y0:y1, x0:x1] = sid
        rgb = np.stack([ids % 256, (ids // 256) % 256, ids // 65536], -1).astype(np.uint8)
        Image.fromarray(rgb).save(f"{pan_dir}/panoptic_{name}/{fn}.png")
        infos.append({"id": iid, "file_name": fn + ".jpg", "height": 32, "width": 48})
        anns.append({"image_id": iid, "file_name": fn + ".png", "segments_info": [
            {"id": sid, "category_id": c, "iscrowd": crowd, "area": int((ids == sid).sum()),
             "bbox": [x0, y0, x1 - x0, y1 - y0]}
            for sid, c, crowd, (y0, y1, x0, x1) in segs]})
    with open(f"{ann_dir}/annotations/panoptic_{name}.json", "w") as f:
        json.dump({"images": infos, "annotations": anns, "categories": cats}, f)
    coco_paths[f"{split}_images"] = img_dir
    coco_paths[f"{split}_annotations"] = ann_dir
    coco_paths[f"pan_{name}"] = pan_dir


def fake_download_and_extract(self, url_or_urls):
    if isinstance(url_or_urls, dict):
        return {k: epath.Path(coco_paths[k]) for k in url_or_urls}
    return epath.Path(os.path.join(fake, "davis"))


def fake_extract(self, path):
    name = os.path.basename(str(path)).replace("panoptic_", "").replace(".zip", "")
    return epath.Path(coco_paths[f"pan_{name}"])


tfds.download.DownloadManager.download_and_extract = fake_download_and_extract
tfds.download.DownloadManager.extract = fake_extract
for name in ("davis/480p", "coco/2017_panoptic"):
    b = tfds.builder(name, data_dir=out, file_format="array_record")
    print(name, b.version)
    b.download_and_prepare()
print("built")
