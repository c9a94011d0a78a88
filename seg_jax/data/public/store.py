"""Where the public datasets live and whether each is ready to read (no TensorFlow needed).

A dataset is read from ``<data_dir>/<tfds name>/<tfds_version>/`` (e.g. ``~/tensorflow_datasets/coco/2017_panoptic/
1.1.0/``): its ArrayRecord shards are opened directly and each record is parsed with a small FeaturesDict of the
keys seg_jax reads (:class:`RawSplit`), so reading needs neither TensorFlow nor the builder's code.
``data_dir``: ``config.data.public_dir``, else ``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets`` (TFDS's own
default), so data prepared by plain TFDS is found too.

:func:`check` tells one of: ready, not prepared, prepared by another builder version, half-built (shard files or
seg_jax's index missing), each as a one-line :class:`PublicDataError` that names the fix.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from seg_jax.data.io import BadInputError

_HERE = Path(__file__).parent
with open(_HERE / "datasets.json") as _f:
    DATASETS: dict[str, dict] = {k: v for k, v in json.load(_f).items() if not k.startswith("_")}
NAMES = tuple(DATASETS)
INDEX_FILE = "seg_jax_index.json"   # what seg_jax adds beside TFDS's files (written last, atomically)


class PublicDataError(BadInputError):
    """A public dataset that cannot be read or prepared; the message is one line and names the fix.
    Command-line tools exit with :data:`EXIT_CODE` on it."""

    EXIT_CODE = 2


def default_data_dir() -> str:
    return os.environ.get("TFDS_DATA_DIR") or os.path.join(os.path.expanduser("~"), "tensorflow_datasets")


def data_dir(config=None) -> str:
    """``config.data.public_dir`` when set, else :func:`default_data_dir`."""
    given = config.data.public_dir if config is not None else ""
    return os.path.expanduser(given) if given else default_data_dir()


def spec(name: str) -> dict:
    if name not in DATASETS:
        raise PublicDataError(f"unknown dataset {name!r}; choose one of {', '.join(NAMES)}")
    return DATASETS[name]


def prepare_command(name: str, directory: str | None = None) -> str:
    where = "" if directory is None or directory == default_data_dir() else f" --data_dir {directory}"
    return f"python -m seg_jax.data.prepare {name}{where}"


def dataset_root(directory: str, name: str) -> Path:
    """``<data_dir>/<tfds name>`` (the folder that holds one folder per builder version)."""
    return Path(directory) / spec(name)["tfds"]


def version_dir(directory: str, name: str) -> Path:
    return dataset_root(directory, name) / spec(name)["tfds_version"]


def _versions(directory: str, name: str) -> list[str]:
    root = dataset_root(directory, name)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and p.name[:1].isdigit())


def check_data_dir(directory: str) -> None:
    """A data dir that exists but is not a folder (``$TFDS_DATA_DIR`` set to a file) is one
    :class:`PublicDataError` line, not "not prepared" for every dataset."""
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise PublicDataError(f"the TFDS data dir {directory} is a file, not a folder: point $TFDS_DATA_DIR (or "
                              "--data_dir / config.data.public_dir) at a folder")


def check(directory: str, name: str, need_index: bool = True) -> Path:
    """-> the ready version folder of ``name`` under ``directory``; else raises :class:`PublicDataError` (one line:
    not a folder / not prepared / another version / half-built, with the command that fixes it)."""
    check_data_dir(directory)
    s = spec(name)
    vdir = version_dir(directory, name)
    fix = prepare_command(name, directory)
    if not vdir.is_dir():
        other = _versions(directory, name)
        if other:
            raise PublicDataError(f"{dataset_root(directory, name)} holds {name} version {', '.join(other)} (another "
                                  f"TFDS builder version); this seg_jax reads {s['tfds_version']}: run `{fix}` "
                                  f"(needs ~{s['disk_gb']} GB free)")
        raise PublicDataError(f"{name} is not prepared in {directory}: run `{fix}` (needs ~{s['disk_gb']} GB free)")
    info = vdir / "dataset_info.json"
    if not info.is_file():
        raise PublicDataError(f"{vdir}: half-built (no dataset_info.json); run `{fix}` to build it again")
    missing = [str(p) for p in shard_files(vdir) if not p.is_file()]
    if missing:
        raise PublicDataError(f"{vdir}: half-built ({len(missing)} shard files missing, e.g. {missing[0]}); "
                              f"run `{fix}` to build it again")
    if need_index and not (vdir / INDEX_FILE).is_file():
        raise PublicDataError(f"{vdir}: half-built (seg_jax's {INDEX_FILE} missing); run `{fix}` to finish it")
    return vdir


def shard_files(vdir: Path) -> list[Path]:
    """Every shard file that the folder's ``dataset_info.json`` lists, for each split."""
    info = json.loads((vdir / "dataset_info.json").read_text())
    name, fmt = info.get("name", ""), info.get("fileFormat", "tfrecord")
    template = info.get("splits", [{}])[0].get("filepathTemplate") if info.get("splits") else None
    out = []
    for split in info.get("splits", []):
        lengths = split.get("shardLengths", [])
        n = len(lengths)
        for k in range(n):
            pattern = split.get("filepathTemplate") or template or "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"
            shard = f"{k:05d}-of-{n:05d}"
            fname = (pattern.replace("{DATASET}", name).replace("{SPLIT}", split["name"])
                     .replace("{FILEFORMAT}", fmt).replace("{SHARD_X_OF_Y}", shard))
            out.append(vdir / fname)
    return out


def read_index(vdir: Path) -> dict:
    return json.loads((vdir / INDEX_FILE).read_text())


def write_index(vdir: Path, index: dict) -> None:
    """Write seg_jax's index beside the TFDS files, atomically (a reader never sees half a file)."""
    tmp = vdir / (INDEX_FILE + ".tmp")
    tmp.write_text(json.dumps(index) + "\n")
    os.replace(tmp, vdir / INDEX_FILE)


def split_files(vdir: Path, split: str) -> list[Path]:
    """The shard files of one split, in shard order."""
    files = [p for p in shard_files(vdir) if f"-{split}." in p.name]
    if not files:
        raise PublicDataError(f"{vdir}: no split {split!r} in dataset_info.json")
    return files


class RawSplit:
    """Random access to one split of a prepared ArrayRecord folder, parsed with a caller's FeaturesDict.

    ``features`` declares only the keys the caller reads, in their stored form: an encoded image (or a sequence of
    them) as a ``Tensor(shape=(), dtype=np.object_)`` leaf, which comes back as bytes, so a reader decodes only the
    frames it uses (and the builder's own feature classes, some of which need TensorFlow, are never built).
    ``split[i]`` -> the nested dict of numpy values / bytes.
    """

    def __init__(self, vdir: Path, split: str, features):
        from array_record.python.array_record_data_source import ArrayRecordDataSource
        self.vdir, self.split, self.features = Path(vdir), split, features
        self.files = [str(p) for p in split_files(self.vdir, split)]
        self._records = ArrayRecordDataSource(self.files)

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, index: int) -> dict:
        return self.features.deserialize_example_np(self._records[index])

    def __getstate__(self):   # Grain workers re-open the files
        return {"vdir": self.vdir, "split": self.split, "features": self.features}

    def __setstate__(self, state):
        self.__init__(state["vdir"], state["split"], state["features"])


def encoded():
    """The feature of one encoded image as stored (bytes)."""
    import numpy as np
    import tensorflow_datasets as tfds
    return tfds.features.Tensor(shape=(), dtype=np.object_)


def label_file_names(vdir: Path, feature_path: str) -> list[str]:
    """Class names TFDS wrote for a ClassLabel feature (``'tracks/category'`` -> ``tracks-category.labels.txt``)."""
    path = Path(vdir) / (feature_path.replace("/", "-") + ".labels.txt")
    if not path.is_file():
        raise PublicDataError(f"{vdir}: half-built ({path.name} missing); rerun its prepare command")
    return path.read_text().splitlines()
