"""The Colab notebooks run top to bottom (tiny switch: untrained weights, tiny data) and show their figures.

Executed with nbclient in a python3 kernel of this interpreter, with SEG_JAX_TINY=1 and the test session's JAX
persistent compilation cache passed through (see conftest.py), so reruns mostly load compiled executables.
"""
import os
from pathlib import Path

import nbclient  # in the [dev] extra: a missing notebook runner must fail CI, not skip the notebooks
import nbformat
import pytest

COLAB = Path(__file__).resolve().parents[1] / "colab"
NOTEBOOKS = ("quickstart", "train", "temporal")


def _execute(name: str, tmp_path: Path):
    nb = nbformat.read(COLAB / f"{name}.ipynb", as_version=4)
    env = dict(os.environ, SEG_JAX_TINY="1", JAX_PLATFORMS="cpu", MPLBACKEND="module://matplotlib_inline.backend_inline",
               PYTHONPATH=os.pathsep.join(p for p in (str(COLAB.parent), os.environ.get("PYTHONPATH")) if p))
    # kernel "python3" is the native ipykernel spec, i.e. this interpreter (the venv with seg_jax)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=env)
    return nb


def _outputs(nb):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def _text(nb) -> str:
    parts = []
    for o in _outputs(nb):
        if o.get("output_type") == "stream":
            parts.append(o.get("text", ""))
        elif "data" in o:
            parts.append(o["data"].get("text/plain", ""))
    return "".join(parts)


def _images(nb) -> int:
    return sum(1 for o in _outputs(nb) if "data" in o and "image/png" in o["data"])


def test_committed_notebooks_have_no_outputs():
    for name in NOTEBOOKS:
        nb = nbformat.read(COLAB / f"{name}.ipynb", as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and "pip" in code[0].source and "find_spec(\"seg_jax\")" in code[0].source, name
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), f"{name}: clear outputs"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(name, tmp_path):
    nb = _execute(name, tmp_path)
    errors = [o for o in _outputs(nb) if o.get("output_type") == "error"]
    assert not errors, errors
    text = _text(nb)
    assert "TINY = True" in text
    assert _images(nb) >= (2 if name != "train" else 1), f"{name}: expected inline figures"
    if name == "quickstart":
        assert "UNTRAINED random weights" in text and "frames in" in text
    elif name == "train":
        assert "train rows" in text and _images(nb) >= 2
    elif name == "temporal":
        assert "max |p_scan - p_stream|" in text and "convlstm   flicker" in text
