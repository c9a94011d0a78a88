"""ONNX export: onnxruntime reproduces the Flax models (probabilities within 1e-4), and the JAX-free runner."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import jax
import numpy as np
import onnx
import pytest

from seg_jax.artifacts import export as seg_export
from seg_jax.artifacts.model_io import load_weights
from seg_jax.bench.onnx_fps import ONNX_LINE
from seg_jax.models.build import build_model
from seg_jax.models.unet_mobilenet import UNetMobileNetConvLSTM
from seg_jax.onnx.check import narrow_unet
from seg_jax.onnx.export import export_onnx
from seg_jax.onnx.runtime import OnnxSegmenter, load_session

ATOL = 1e-4
SIZES = ((64, 96), (96, 64))


# XLA compiles the reference models ~2.5x faster without its backend optimisations (same model maths).
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def _jax_apply(model):
    return jax.jit(lambda v, x: model.apply(v, x, train=False), compiler_options=FAST_COMPILE)


def _images(shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, shape).astype(np.float32)


def _symbolic(model: onnx.ModelProto, name: str) -> list:
    info = next(i for i in list(model.graph.input) + list(model.graph.output) if i.name == name)
    return [d.dim_param or d.dim_value for d in info.type.tensor_type.shape.dim]


@pytest.fixture(scope="module")
def mobilenet_onnx(tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "mobilenet.onnx"
    assert seg_export.main(["--format", "onnx", "--model", "mobilenet", "--out", str(path)]) == 0  # shipped weights
    return path


def test_mobilenet_matches_jax_at_two_sizes(mobilenet_onnx):
    model_proto = onnx.load(str(mobilenet_onnx))
    onnx.checker.check_model(model_proto, full_check=True)
    assert model_proto.opset_import[0].version >= 17
    assert _symbolic(model_proto, "image") == ["batch", "height", "width", 3]
    assert _symbolic(model_proto, "mask") == ["batch", "height", "width", 1]
    variables, manifest = load_weights("mobilenet")
    model = build_model(manifest["model"], depthwise_impl="grouped")
    session, apply = load_session(mobilenet_onnx), _jax_apply(model)
    for h, w in SIZES:
        x = _images((2, h, w, 3))
        want = np.asarray(jax.nn.sigmoid(apply(variables, x)))
        got = session.run(["mask"], {"image": x})[0]
        assert got.shape == (2, h, w, 1) and want.std() > 0.02  # a real mask, not a constant
        np.testing.assert_allclose(got, want, atol=ATOL, rtol=0)


def test_convlstm_clip_with_state_fed_back(tmp_path):
    path = export_onnx("convlstm", tmp_path / "lstm.onnx")
    onnx.checker.check_model(str(path), full_check=True)
    proto = onnx.load(str(path))
    assert _symbolic(proto, "h0i") == ["batch", "height/8", "width/8", 72]
    assert _symbolic(proto, "c3o") == ["batch", "height", "width", 16]
    variables, manifest = load_weights("convlstm")
    model = build_model(manifest["model"], depthwise_impl="grouped")
    session = load_session(path)
    outputs = [o.name for o in session.get_outputs()]
    for (h, w), seed in zip(SIZES, (1, 2)):
        clip = _images((2, 3, h, w, 3), seed)
        clip[:, 1:] = 0.6 * clip[:, 1:] + 0.4 * clip[:, :1]  # correlated frames, like a video
        logits, state = _jax_apply(model)(variables, clip)
        zeros = UNetMobileNetConvLSTM.initial_state(2, h, w)
        feeds = {f"{hc}{level}i": np.asarray(a) for level, pair in enumerate(zeros) for hc, a in zip("hc", pair)}
        masks = []
        for t in range(clip.shape[1]):
            res = dict(zip(outputs, session.run(outputs, dict(feeds, image=clip[:, t]))))
            masks.append(res.pop("mask"))
            feeds = {name[:-1] + "i": value for name, value in res.items()}
        np.testing.assert_allclose(np.stack(masks, 1), np.asarray(jax.nn.sigmoid(logits)), atol=ATOL, rtol=0)
        for level, (hh, cc) in enumerate(state):
            np.testing.assert_allclose(feeds[f"h{level}i"], np.asarray(hh), atol=ATOL, rtol=0)
            np.testing.assert_allclose(feeds[f"c{level}i"], np.asarray(cc), atol=ATOL, rtol=0)
        assert np.abs(masks[2] - masks[0]).max() > 1e-3  # the state (and the frames) change the output
    seg = OnnxSegmenter(path)  # the runner carries the state between frames and drops it on reset()
    settle = int(manifest.get("settle_steps", 0))
    assert seg.recurrent and seg.settle_steps == settle
    # predict() settles each image like the stream's first frame: the model on the image repeated settle + 1 times
    x = _images((1, 64, 64, 3), 4)
    logits, _ = _jax_apply(model)(variables, np.repeat(x[:, None], settle + 1, axis=1))
    np.testing.assert_allclose(seg.predict(x), np.asarray(jax.nn.sigmoid(logits[:, -1])), atol=ATOL, rtol=0)
    frame, other = ((_images((64, 64, 3), s) * 255).astype(np.uint8) for s in (5, 6))
    seg.step(frame)
    carried = seg.step(other)
    seg.reset()
    fresh = seg.step(other)
    assert np.abs(carried - fresh).max() > 1e-4
    seg.reset()
    np.testing.assert_array_equal(seg.step(other), fresh)


def test_unet_matches_jax_at_two_sizes(tmp_path):
    model, variables = narrow_unet()  # widths 8-64, BatchNorm statistics perturbed
    path = export_onnx("unet", tmp_path / "unet.onnx", variables=variables)
    session = load_session(path)
    for h, w in ((32, 48), (64, 32)):
        x = _images((2, h, w, 3), 4)
        want = np.asarray(jax.nn.sigmoid(_jax_apply(model)(variables, x)))
        assert want.std() > 0.05
        np.testing.assert_allclose(session.run(["mask"], {"image": x})[0], want, atol=ATOL, rtol=0)


def test_fixed_size_export_and_runner_size_errors(tmp_path, mobilenet_onnx):
    variables, _ = load_weights("mobilenet")
    fixed = export_onnx("mobilenet", tmp_path / "fixed.onnx", variables=variables, size=(64, 96))
    assert _symbolic(onnx.load(str(fixed)), "image") == ["batch", 64, 96, 3]
    with pytest.raises(ValueError, match="exported for 64x96 only"):
        OnnxSegmenter(fixed, input_size=(96, 96))
    with pytest.raises(ValueError, match="multiples of 32"):
        OnnxSegmenter(mobilenet_onnx, input_size=(100, 96))
    with pytest.raises(ValueError, match="multiples of 32"):
        OnnxSegmenter(mobilenet_onnx).predict(_images((1, 48, 48, 3)))
    alpha = OnnxSegmenter(mobilenet_onnx).step((_images((90, 160, 3)) * 255).astype(np.uint8))
    assert alpha.shape == (90, 160) and alpha.dtype == np.float32 and 0.0 <= alpha.min() <= alpha.max() <= 1.0


def _one_line_error(res) -> str:
    err = res.stderr.strip()
    assert res.returncode != 0 and "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def _cli(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=120)


def test_export_bad_input_is_one_line(tmp_path, capsys):
    out = str(tmp_path / "m.onnx")
    for argv, expect in ((["--format", "tflite", "--model", "mobilenet"], "invalid choice: 'tflite'"),
                         (["--format", "onnx", "--model", "resnet"], "invalid choice: 'resnet'")):
        with pytest.raises(SystemExit) as e:
            seg_export.main(argv + ["--out", out])
        err = capsys.readouterr().err.strip()
        assert e.value.code == 2 and expect in err and len(err.splitlines()) == 1, err
    (tmp_path / "file").write_text("x")
    for argv, expect in ((["--out", str(tmp_path / "file" / "m.onnx")], "cannot write"),
                         (["--out", str(tmp_path)], "is a folder"),
                         (["--out", out, "--size", "100x96"], "multiples of 32")):
        assert seg_export.main(["--format", "onnx", "--model", "mobilenet"] + argv) == 2
        err = capsys.readouterr().err.strip()
        assert expect in err and len(err.splitlines()) == 1, err


def test_runner_bad_input_is_one_line(tmp_path, mobilenet_onnx):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a protobuf \x00\xff" * 10)
    assert "not a loadable ONNX model" in _one_line_error(_cli("seg_jax.onnx_live", "--onnx", str(junk)))
    assert "does not exist" in _one_line_error(_cli("seg_jax.onnx_live", "--onnx", str(tmp_path / "none.onnx")))
    err = _one_line_error(_cli("seg_jax.onnx_live", "--onnx", str(mobilenet_onnx), "--input-size", "100x100"))
    assert "cannot be taken" in err
    err = _one_line_error(_cli("seg_jax.onnx_live", "--onnx", str(mobilenet_onnx), "--output",
                               str(tmp_path / "no" / "such" / "x.mp4")))
    assert "cannot write output" in err


# Runs the runner with jax and flax made unimportable: the whole path (imports, model, video) is JAX-free.
NO_JAX = textwrap.dedent("""
    import runpy, sys
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("jax", "jaxlib", "flax", "optax", "orbax"):
                raise ImportError(f"{name} is blocked in this test")
    sys.meta_path.insert(0, Block())
    sys.argv = ["seg_jax.onnx_live"] + sys.argv[1:]
    try:
        runpy.run_module("seg_jax.onnx_live", run_name="__main__")
    except SystemExit as e:
        assert not any(m.split(".")[0] in ("jax", "flax") for m in sys.modules)
        raise
""")


@pytest.mark.parametrize("mode", ["blur", "color:0,177,64"])
def test_runner_without_jax_writes_a_video(tmp_path, mobilenet_onnx, mode):
    import cv2
    out = tmp_path / "out.mp4"
    res = subprocess.run([sys.executable, "-c", NO_JAX, "--onnx", str(mobilenet_onnx), "--source", "sample",
                          "--mode", mode, "--max-frames", "4", "--output", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "4 frames" in res.stdout and ONNX_LINE.search(res.stdout)  # the line seg_jax.bench.onnx_fps parses
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 4 and int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 640


def test_runner_rejects_bad_settle_steps_metadata_in_one_line():
    assert OnnxSegmenter._settle_steps("5", "m.onnx") == 5
    for bad in ("x", "-1", "2.5", "true"):
        with pytest.raises(ValueError, match=r"m.onnx metadata seg_jax.settle_steps .*re-export.*bad settle_steps"):
            OnnxSegmenter._settle_steps(bad, "m.onnx")
