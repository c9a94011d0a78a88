"""The evaluator's peer rows: alphas from elsewhere scored by the same code, the per-source table, and one
clear line (and seg_jax rows alone) when the MediaPipe virtualenv cannot be had."""
import os

import cv2
import numpy as np
import pytest

from seg_jax.evaluation import evaluate


def _write(path, arr):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), arr)


@pytest.fixture()
def clip_files(tmp_path):
    files = []
    for t in range(3):
        img = np.full((12, 16, 3), 40 * t, np.uint8)
        mask = np.zeros((12, 16), np.uint8)
        mask[2:10, t:t + 8] = 255
        _write(tmp_path / "f" / f"{t}.jpg", img)
        _write(tmp_path / "m" / f"{t}.png", mask)
        files.append({"name": str(t), "image_path": str(tmp_path / "f" / f"{t}.jpg"),
                      "mask_path": str(tmp_path / "m" / f"{t}.png"), "sequence": "clip"})
    return files


def test_replayed_truth_scores_perfectly_and_has_video_metrics(clip_files):
    truths = [cv2.imread(f["mask_path"], cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255 for f in clip_files]
    m = evaluate.evaluate_full_resolution(evaluate.ReplayAlphas(truths), clip_files)
    assert m["dice"] == pytest.approx(1) and m["miou"] == pytest.approx(1)
    assert m["flicker"] == 0 and m["dtssd"] == 0
    still = [np.zeros_like(t) for t in truths]      # an alpha that never moves while the person does
    m = evaluate.evaluate_full_resolution(evaluate.ReplayAlphas(still), clip_files)
    assert m["dtssd"] > 0 and m["flicker"] == 0 and m["dice"] < 0.01


def test_replay_rejects_an_alpha_of_another_size(clip_files):
    with pytest.raises(ValueError, match="does not match image"):
        evaluate.evaluate_full_resolution(evaluate.ReplayAlphas([np.zeros((5, 5), np.float32)] * 3), clip_files)


def test_table_puts_peers_beside_seg_jax_per_source():
    m = {"dice": 0.9, "iou": 0.8, "miou": 0.85, "mad": 0.05, "boundary_f": 0.7, "examples": 3}
    results = [{"model": "mobilenet", "split": "test", "full_res": {"selfies": m, "davis": {**m, "flicker": 0.01,
                                                                                          "dtssd": 1.5}}},
               {"model": "mediapipe general 256x256", "peer": True, "full_res": {"selfies": m, "davis": m}}]
    lines = evaluate.full_res_table(results)
    body = [line for line in lines if line.startswith("| selfies") or line.startswith("| davis")]
    assert [line.split(" | ")[1] for line in body] == ["mobilenet", "mediapipe general 256x256"] * 2
    assert "| 0.0100 | 1.5000 |" in body[2] and body[1].endswith("| - | - |")
    assert "mIoU" in lines[2] and "dtSSD" in lines[2]


def test_missing_peer_venv_is_one_line_and_no_rows(tmp_path, capsys, monkeypatch, clip_files):
    from seg_jax import data
    from seg_jax.peers import mediapipe as peers
    got = peers.mediapipe_alphas([np.zeros((4, 4, 3), np.uint8)], venv=tmp_path / "no-venv", install=False)
    assert got["status"] == "skipped" and "no mediapipe==0.10.21 virtualenv" in got["reason"]
    monkeypatch.setattr(data, "heldout_files", lambda root, split, subset: clip_files)
    monkeypatch.setattr(peers, "mediapipe_alphas", lambda frames, install: got)
    assert evaluate.evaluate_mediapipe(str(tmp_path), "test", ["davis"], install=False) == []
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("seg_jax.evaluate: MediaPipe rows left out: no mediapipe")


def test_peer_alphas_become_rows(monkeypatch, clip_files):
    from seg_jax import data
    from seg_jax.peers import mediapipe as peers
    truths = [cv2.imread(f["mask_path"], cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255 for f in clip_files]
    fake = {"status": "ok", "version": "0.10.21", "alphas": {"general_256x256": truths,
                                                               "landscape_144x256": [t * 0 for t in truths]}}
    monkeypatch.setattr(data, "heldout_files", lambda root, split, subset: clip_files)
    monkeypatch.setattr(peers, "mediapipe_alphas", lambda frames, install: fake)
    rows = evaluate.evaluate_mediapipe("unused", "test", ["davis"], install=False)
    assert [r["model"] for r in rows] == ["mediapipe general 256x256", "mediapipe landscape 144x256"]
    assert rows[0]["full_res"]["davis"]["dice"] == pytest.approx(1)
    assert rows[1]["full_res"]["davis"]["dice"] < 0.01 and all(r["peer"] for r in rows)


def test_a_peer_venv_folder_of_the_user_is_never_deleted(tmp_path, monkeypatch):
    import subprocess

    from seg_jax.peers import mediapipe as peers
    mine = tmp_path / "my_folder"                      # SEG_JAX_PEER_VENV pointed at a folder of the user's
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    calls = []
    monkeypatch.setattr(peers.subprocess, "run", lambda *a, **k: calls.append(a) or
                        subprocess.CompletedProcess(a, 1, "", "ERROR: no network"))
    py, message = peers.ensure_mediapipe_venv(mine, install=True)
    assert py is None and "is not a virtualenv" in message and not calls
    assert (mine / "notes.txt").read_text() == "mine"
    (mine / "pyvenv.cfg").write_text("home = /usr/bin\n")   # an existing venv whose install fails: kept as it is
    (mine / "bin").mkdir()
    (mine / "bin" / "python").write_text("")
    py, message = peers.ensure_mediapipe_venv(mine, install=True)
    assert py is None and "could not install" in message and calls
    assert (mine / "notes.txt").read_text() == "mine" and (mine / "pyvenv.cfg").exists()


def test_full_resolution_base_size_sets_the_segmenters_pixel_budget(tmp_path, monkeypatch, clip_files):
    from seg_jax import data
    monkeypatch.setattr(data, "heldout_files", lambda root, split, subset: clip_files)
    monkeypatch.setattr(evaluate, "evaluate_resized", lambda *a, **k: {})
    result = evaluate.evaluate_model("mobilenet", data_path=str(tmp_path), subsets=["davis"], fps=False,
                                     base_size="64x96")
    assert result["full_res_base_size"] == [64, 96]
    assert 0.0 <= result["full_res"]["davis"]["dice"] <= 1.0 and "flicker" in result["full_res"]["davis"]
    with pytest.raises(ValueError):
        evaluate.evaluate_model("mobilenet", data_path=str(tmp_path), subsets=["davis"], fps=False,
                                base_size="64xabc")


def test_full_resolution_stabilise_flag_sets_the_streams_hold(tmp_path, monkeypatch, clip_files):
    from seg_jax import data
    monkeypatch.setattr(data, "heldout_files", lambda root, split, subset: clip_files)
    monkeypatch.setattr(evaluate, "evaluate_resized", lambda *a, **k: {})
    runs = {text: evaluate.evaluate_model("mobilenet", data_path=str(tmp_path), subsets=["davis"], fps=False,
                                          base_size="64x96", stabilise=text) for text in ("off", "0.95,100")}
    assert runs["off"]["stabilise"]["strength"] == 0.0
    assert runs["0.95,100"]["stabilise"] == {"strength": 0.95, "motion": 100.0, "radius": 2, "track": False,
                                             "max_shift": 0.125}
    # a hold that keeps 95 % of the previous alpha on every pixel moves the alpha less between frames
    assert runs["0.95,100"]["full_res"]["davis"]["flicker"] < runs["off"]["full_res"]["davis"]["flicker"]
    with pytest.raises(ValueError, match="STRENGTH,MOTION"):
        evaluate.evaluate_model("mobilenet", data_path=str(tmp_path), subsets=["davis"], fps=False,
                                stabilise="strong")


def test_the_mediapipe_worker_imports_the_real_package_not_seg_jax_own_driver(tmp_path):
    """The worker's folder holds seg_jax/peers/mediapipe.py; it must not shadow the peer's ``mediapipe``."""
    import subprocess
    import sys
    from pathlib import Path

    import numpy as np
    np.save(tmp_path / "a.npy", np.zeros((8, 8, 3), np.uint8))
    worker = Path(__file__).resolve().parents[1] / "seg_jax" / "peers" / "mediapipe_worker.py"
    proc = subprocess.run([sys.executable, str(worker), str(tmp_path), str(tmp_path / "out.json"), "--warmup", "0",
                           "--iters", "1"], capture_output=True, text=True, timeout=120)
    # this test's interpreter has no mediapipe: the worker must say so, not load seg_jax's driver in its place
    assert proc.returncode != 0 and "No module named 'mediapipe'" in proc.stderr, proc.stderr[-500:]


def test_peer_rows_come_from_an_earlier_evaluation_of_the_same_images_only():
    own = {"model": "convlstm", "split": "test", "full_res": {"davis": {"examples": 165, "dice": 0.77},
                                                             "people": {"examples": 40, "dice": 0.91}}}
    peer = {"model": "rvm", "peer": True, "split": "test",
            "full_res": {"davis": {"examples": 165, "dice": 0.9}, "people": {"examples": 40, "dice": 0.96},
                         "camvid": {"examples": 43, "dice": 0.4}}}
    earlier = {"results": [{"model": "mobilenet", "split": "test", "full_res": {}}, peer]}
    rows = evaluate.peer_rows_from(earlier, own)
    assert [r["model"] for r in rows] == ["rvm"] and set(rows[0]["full_res"]) == {"davis", "people"}
    combined = evaluate.add_peer_rows({"results": [own]}, rows)
    assert [r["model"] for r in combined["results"]] == ["convlstm", "rvm"]
    with pytest.raises(ValueError, match="scored the val split"):
        evaluate.peer_rows_from({"results": [{**peer, "split": "val"}]}, own)
    fewer = {**peer, "full_res": {**peer["full_res"], "people": {"examples": 30, "dice": 0.96}}}
    with pytest.raises(ValueError, match="did not score the same people images"):
        evaluate.peer_rows_from({"results": [fewer]}, own)
    with pytest.raises(ValueError, match="no peer rows"):
        evaluate.peer_rows_from({"results": [own]}, own)
