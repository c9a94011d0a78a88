"""The one size rule (seg_jax.inference.sizes): parsing, checking, and the JAX and ONNX runners choosing alike."""
import sys

import numpy as np
import pytest

from seg_jax.inference.sizes import MAX_INPUT_SIDE, check_input_size, choose_input_size, parse_size, parse_sizes


def test_parse_size_forms_and_errors(capsys):
    assert parse_size("160x288") == (160, 288) and parse_size(" 160X288 ") == (160, 288)
    assert parse_size(256) == (256, 256) and parse_size("256") == (256, 256) and parse_size([64, 32]) == (64, 32)
    assert parse_size(None, auto=True) is None and parse_size("auto", auto=True) is None
    assert parse_size("160,288", flag="input_size") == (160, 288)
    assert "the H,W form is deprecated; write 160x288" in capsys.readouterr().err
    for bad in ("big", "1x2x3", "0x256", "-32x64", None, "auto", True, [1, 2, 3]):
        with pytest.raises(ValueError, match="--input_size .*(is not a size|must be positive).*HxW") as e:
            parse_size(bad, flag="input_size")
        assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="'big' is not a size; write HxW, e.g. 256x256 or 160x288, or auto"):
        parse_size("big", auto=True)
    assert parse_sizes("256x256,160x256") == ((256, 256), (160, 256)) and parse_sizes("96") == ((96, 96),)


def test_check_input_size():
    assert check_input_size(None) is None and check_input_size([64, 96]) == (64, 96)
    assert check_input_size((48, 16), multiple=16) == (48, 16)
    for bad in ((30, 32), (0, 32), (32, MAX_INPUT_SIDE + 32)):
        with pytest.raises(ValueError, match=f"multiples of 32 up to {MAX_INPUT_SIDE}"):
            check_input_size(bad)


def test_choose_input_size_examples():
    assert choose_input_size((360, 640)) == (160, 288)
    assert choose_input_size((480, 640), (160, 288)) == (192, 224)
    assert choose_input_size((480, 640), (160, 288), keep_aspect=False) == (160, 288)


def test_sizes_module_imports_no_jax():
    import subprocess
    code = "import sys, seg_jax.inference.sizes, seg_jax.onnx.runtime; assert 'jax' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


FRAMES = [(h, w) for h in (48, 90, 144, 240, 360, 480, 720, 1080, 1920) for w in (64, 128, 200, 480, 640, 854, 1280,
                                                                                    1920)]
BASES = [(256, 256), (160, 288), (288, 160), (192, 256), (128, 128), (320, 320)]


@pytest.fixture(scope="module")
def runners(tmp_path_factory):
    pytest.importorskip("onnxruntime")
    from seg_jax import Segmenter
    from seg_jax.onnx.export import export_onnx
    from seg_jax.onnx.runtime import OnnxSegmenter
    path = export_onnx("mobilenet", tmp_path_factory.mktemp("onnx") / "m.onnx", random_init=True)
    return Segmenter("mobilenet", checkpoint="random"), OnnxSegmenter(path)


@pytest.mark.parametrize("keep_aspect", [True, False])
def test_jax_and_onnx_runners_choose_the_same_size(runners, keep_aspect):
    """Over a grid of frame sizes x bases the Segmenter and the ONNX runner run the network at one size."""
    jax_seg, onnx_seg = runners
    jax_seg.keep_aspect = onnx_seg.keep_aspect = keep_aspect
    changed = 0
    for base in BASES:
        jax_seg.base_size = onnx_seg.base_size = base
        for hw in FRAMES:
            size = jax_seg.input_size_for(hw)
            assert onnx_seg.input_size_for(hw) == size, (base, hw)
            assert size[0] % 32 == 0 and size[1] % 32 == 0 and size[0] * size[1] <= base[0] * base[1]
            changed += size != base
    assert (changed > 0) == keep_aspect
    jax_seg.base_size = onnx_seg.base_size = (160, 288)
    jax_seg.keep_aspect = onnx_seg.keep_aspect = True
    assert jax_seg.input_size_for((480, 640)) == onnx_seg.input_size_for((480, 640)) == (192, 224)
    alpha = onnx_seg.step(np.zeros((480, 640, 3), np.uint8))
    assert alpha.shape == (480, 640)


def test_onnx_runner_checks_the_exported_base_size(tmp_path):
    """A base size in the export's metadata is held to the same rule as a weights manifest's: one line."""
    pytest.importorskip("onnxruntime")
    from seg_jax.inference.segmenter import random_variables
    from seg_jax.onnx.export import build_onnx
    from seg_jax.onnx.runtime import OnnxModelError, OnnxSegmenter
    for size, ok in (([160, 288], True), ([32000, 32000], False), ("huge", False)):
        path = tmp_path / "m.onnx"
        path.write_bytes(build_onnx("mobilenet", random_variables("mobilenet"),
                                    metadata={"input_size": size}).SerializeToString())
        if ok:
            assert OnnxSegmenter(path).base_size == (160, 288)
            continue
        with pytest.raises(OnnxModelError, match="metadata seg_jax.input_size .* is not usable .*; re-export it"):
            OnnxSegmenter(path)
