"""``--light-wrap`` and the clean edges of the replace modes through ``python -m seg_jax.live``, end to end."""
import pytest
from test_live import clip, count_frames, weights  # noqa: F401 - shared fixtures: tiny clip, random weights

from seg_jax.live.cli import main


@pytest.mark.parametrize("extra", [["--light-wrap", "0.3"], ["--no-clean-edges"]])
def test_color_background_with_light_wrap_runs(tmp_path, weights, clip, extra):  # noqa: F811
    out = tmp_path / "out.avi"
    assert main(["--source", str(clip), "--mode", "color:0,0,255", "--output", str(out), "--checkpoint", weights,
                 "-q"] + extra) == 0
    assert count_frames(out) == 5


@pytest.mark.parametrize("value", ["1.5", "-0.1", "nan"])
def test_bad_light_wrap_is_one_line(tmp_path, weights, clip, capsys, value):  # noqa: F811
    argv = ["--source", str(clip), "--mode", "color:0,0,255", "-o", str(tmp_path / "x.mp4"), "--checkpoint",
            weights, "--light-wrap", value]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--light-wrap must be" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "[0, 1]" in err or "finite" in err
