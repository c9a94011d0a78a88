"""Download and build a public dataset through its TFDS builder: ``python -m seg_jax.data.prepare NAME``.

  python -m seg_jax.data.prepare davis17                  # DAVIS 2017 480p (~3 GB free needed), the quickest start
  python -m seg_jax.data.prepare coco                     # COCO 2017 panoptic (~60 GB free while building)
  python -m seg_jax.data.prepare youtube_vis              # manual download first (the command says where)
  python -m seg_jax.data.prepare kaggle --manual_dir DIR  # the paper's Kaggle set, unzipped in DIR
  python -m seg_jax.data.prepare --list                   # what is prepared, its size and example counts

Datasets go to ``--data_dir`` (default ``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets``; training reads the same
place, ``--config.data.public_dir``). TFDS's upstream builders need TensorFlow to *build* (``pip install
'seg_jax[prepare]'``); training reads the result without it.

Safe to rerun: a prepared dataset is left as it is; TFDS builds into a temporary ``incomplete.*`` folder and renames
it into place only when complete, so an interrupted run never leaves a dataset that loads; the rerun removes those
temporary folders (and only those), reuses finished downloads, and starts the build over. seg_jax's index
(``seg_jax_index.json``) is written last, atomically. Every refusal (unknown name, missing manual files, missing
TensorFlow, too little disk, no network, another version, a damaged folder) is one line and exit code 2; nothing
that this tool did not create is deleted.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import socket
import sys
from pathlib import Path

from seg_jax.data.public import store, youtube_vis
from seg_jax.data.public.store import PublicDataError

ALIASES = {"davis": "davis17", "youtube-vis": "youtube_vis", "ytvis": "youtube_vis"}


def canonical(name: str) -> str:
    name = ALIASES.get(name, name)
    store.spec(name)   # unknown -> one line
    return name


def manual_dir(data_dir: str, given: str | None) -> Path:
    return Path(given) if given else Path(data_dir) / "downloads" / "manual"


def check_manual(name: str, data_dir: str, given: str | None) -> None:
    s = store.spec(name)
    where = manual_dir(data_dir, given)
    missing = [f for f in s["manual"] if not (where / f).exists()]
    if missing:
        which = "" if len(missing) == len(s["manual"]) else f" (missing: {', '.join(missing)})"
        raise PublicDataError(f"{name} needs a manual download: put {', '.join(s['manual'])} from "
                              f"{s.get('manual_from', s['homepage'])} into {where}{which}")


def check_packages(name: str) -> None:
    missing = [p for p in store.spec(name)["needs"] if importlib.util.find_spec(p) is None]
    if missing:
        raise PublicDataError(f"building {name} through TFDS needs {', '.join(missing)} (only to prepare; training "
                              f"does not): pip install 'seg_jax[prepare]'")


def free_gb(path: str) -> float:
    p = Path(path).absolute()
    while not p.exists():
        p = p.parent
    return shutil.disk_usage(p).free / 1e9


def check_disk(name: str, data_dir: str) -> None:
    need, have = store.spec(name)["disk_gb"], free_gb(data_dir)
    if have < need:
        raise PublicDataError(f"{name} needs ~{need} GB free in {data_dir} while it is built "
                              f"({store.spec(name)['size_gb']} GB after, without downloads/), only {have:.1f} GB "
                              f"free: free some space or use --data_dir on a bigger disk")


def check_network(name: str, timeout: float = 10.0) -> None:
    for host in store.spec(name).get("hosts", []):
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
        except OSError as e:
            raise PublicDataError(f"no network: cannot reach {host} ({e.__class__.__name__}: {e}); {name} is "
                                  "downloaded from there, so prepare it on a machine with internet access and copy "
                                  "the data dir over") from None


def remove_incomplete(data_dir: str, name: str) -> list[str]:
    """Delete the ``incomplete.*`` temporary folders that an interrupted TFDS build of ``name`` left (TFDS's own
    naming: ``<config dir>/incomplete.<6 chars>_<version>``), nothing else. -> the removed paths."""
    root = store.dataset_root(data_dir, name)
    removed = []
    if root.is_dir():
        for p in root.glob(f"incomplete.*_{store.spec(name)['tfds_version']}"):
            if p.is_dir():
                shutil.rmtree(p)
                removed.append(str(p))
    return removed


def _build(name: str, data_dir: str, manual: Path) -> None:
    """Run the dataset's TFDS builder (download, extract, write ArrayRecord), with TFDS's progress bars."""
    if name == "kaggle":
        from seg_jax.data import tfds_person_segmentation as tps
        tps.build(str(manual), data_dir)
        return
    import tensorflow_datasets as tfds
    s = store.spec(name)
    builder = tfds.builder(s["tfds"], data_dir=data_dir, file_format="array_record")
    if str(builder.version) != s["tfds_version"]:
        raise PublicDataError(f"the installed tensorflow-datasets builds {s['tfds']} version {builder.version}; this "
                              f"seg_jax reads {s['tfds_version']}: install the tensorflow-datasets that "
                              "pyproject.toml pins (constraints.txt)")
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))


def _index(name: str, vdir: Path) -> dict:
    if name == "coco":
        from seg_jax.data.public import coco
        return coco.build_index(vdir)
    if name == "davis17":
        from seg_jax.data.public import davis17
        return davis17.build_index(vdir)
    return youtube_vis.build_index(vdir)


def _is_network_error(e: BaseException) -> bool:
    while e is not None:
        if isinstance(e, (ConnectionError, socket.gaierror, socket.timeout, TimeoutError)):
            return True
        if type(e).__name__ in ("ConnectionError", "URLError", "NewConnectionError", "MaxRetryError"):
            return True
        e = e.__cause__ or e.__context__
    return False


def prepare(name: str, data_dir: str | None = None, manual: str | None = None, out=print) -> Path:
    """Make ``name`` ready in ``data_dir`` (see module docstring). -> its version folder."""
    name = canonical(name)
    data_dir = data_dir or store.default_data_dir()
    store.check_data_dir(data_dir)
    need_index = name != "kaggle"
    vdir = store.version_dir(data_dir, name)
    if vdir.is_dir():
        try:
            store.check(data_dir, name, need_index=False)
        except PublicDataError as e:   # a damaged folder that TFDS renamed into place: not ours to delete
            reason = str(e).split("; run `")[0]
            raise PublicDataError(f"{reason}; left as it is (this tool deletes only what it made): move {vdir} "
                                  f"away, then rerun `{store.prepare_command(name, data_dir)}`") from None
        if need_index and not (vdir / store.INDEX_FILE).is_file():
            out(f"{name}: built; writing seg_jax's index")
            store.write_index(vdir, _index(name, vdir))
        out(f"{name}: prepared in {vdir} ({describe(vdir)})")
        return vdir
    for removed in remove_incomplete(data_dir, name):
        out(f"{name}: removed the interrupted build {removed}")
    check_manual(name, data_dir, manual)
    check_packages(name)
    check_disk(name, data_dir)
    check_network(name)
    out(f"{name}: building {store.spec(name)['tfds']} in {data_dir} (TFDS shows the progress)")
    try:
        _build(name, data_dir, manual_dir(data_dir, manual))
    except PublicDataError:
        raise
    except Exception as e:
        remove_incomplete(data_dir, name)
        if _is_network_error(e):
            raise PublicDataError(f"no network: the download of {name} failed ({type(e).__name__}); rerun when "
                                  "online, finished downloads are reused") from None
        raise
    if need_index:
        store.write_index(vdir, _index(name, vdir))
    store.check(data_dir, name, need_index=need_index)
    out(f"{name}: prepared in {vdir} ({describe(vdir)})")
    return vdir


def describe(vdir: Path) -> str:
    """'<size> GB, train N, validation M' from a folder's files and dataset_info.json."""
    size = sum(p.stat().st_size for p in vdir.rglob("*") if p.is_file()) / 1e9
    info = json.loads((vdir / "dataset_info.json").read_text())
    counts = ", ".join(f"{s['name']} {sum(int(n) for n in s.get('shardLengths', [])):,}" for s in info["splits"])
    return f"{size:.2f} GB, {counts}"


def listing(data_dir: str | None = None) -> list[str]:
    """One line per dataset: prepared (size, counts), or why not (and the command)."""
    data_dir = data_dir or store.default_data_dir()
    store.check_data_dir(data_dir)      # a file there: one error line (exit 2), not "not prepared" six times
    lines = []
    for name in store.NAMES:
        try:
            vdir = store.check(data_dir, name, need_index=name != "kaggle")
            lines.append(f"{name:12s} prepared   {describe(vdir)}  [{vdir}]")
        except PublicDataError as e:
            lines.append(f"{name:12s} -          {e}")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seg_jax.data.prepare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", nargs="?", help=f"one of {', '.join(store.NAMES)} (davis = davis17)")
    parser.add_argument("--data_dir", default=None, help="TFDS data dir (default $TFDS_DATA_DIR or "
                                                         "~/tensorflow_datasets)")
    parser.add_argument("--manual_dir", default=None, help="where manual downloads are (default "
                                                           "<data_dir>/downloads/manual)")
    parser.add_argument("--list", action="store_true", help="show what is prepared, its size and example counts")
    args = parser.parse_args(argv)
    try:
        if args.list:
            print("\n".join(listing(args.data_dir)))
            return 0
        if not args.name:
            raise PublicDataError(f"name a dataset: one of {', '.join(store.NAMES)}, or --list")
        prepare(args.name, args.data_dir, args.manual_dir)
    except PublicDataError as e:
        print(f"seg_jax.data.prepare: error: {e}", file=sys.stderr)
        return PublicDataError.EXIT_CODE
    except KeyboardInterrupt:
        print("seg_jax.data.prepare: interrupted; rerun the same command to finish (TFDS's temporary folder is "
              "removed, finished downloads are kept)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
