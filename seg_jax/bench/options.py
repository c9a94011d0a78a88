"""What a benchmark run measures: the sections, models, sizes and repetition counts, per suite."""
from __future__ import annotations

import dataclasses
from typing import Optional

from seg_jax.models.registry import MODEL_NAMES

# The BatchNorm-folded variants, by the dtype their 1x1 products take (seg_jax.inference.fused's dot_dtype)
FUSED_VARIANTS = {"float32": "fused-bn-float32", "bfloat16": "fused-bn-bf16dot"}


@dataclasses.dataclass
class Options:
    suite: str = "cpu"                                     # cpu | gpu
    models: tuple[str, ...] = MODEL_NAMES
    sizes: tuple[tuple[int, int], ...] = ((256, 256), (160, 256))      # model inputs (H, W), multiples of 32
    frames: tuple[tuple[int, int], ...] = ((480, 640), (720, 1280))    # end-to-end frame sizes (H, W)
    e2e_input: tuple[int, int] = (256, 256)               # model input for the end-to-end step
    e2e_composite: bool = True                            # also time the alpha-composite variants
    sections: tuple[str, ...] = ("latency", "ablation", "e2e", "throughput", "train", "datapath", "peers",
                                 "paired")
    warmup: int = 10
    iters: int = 100
    e2e_iters: int = 50
    throughput_batch: int = 16
    throughput_iters: int = 10
    throughput_dtypes: tuple[str, ...] = ("float32", "bfloat16")
    train_batch: int = 4
    train_size: tuple[int, int] = (256, 256)
    train_iters: int = 5
    train_models: Optional[tuple[str, ...]] = None        # default: models, minus unet on CPU
    clip_length: int = 2                                  # T for the temporal model's training clips
    unet_max_seconds: float = 20.0                        # time budget per U-Net latency measurement
    peer_iters: int = 100
    peer_install: bool = True
    paired_rounds: int = 12                               # paired section: alternating blocks of seg_jax / peer
    paired_block: int = 10                                # calls per block
    bf16_latency: bool = True                             # also time bfloat16 compute at batch 1
    variants: Optional[tuple[str, ...]] = None            # only variants whose name contains one of these
    seed: int = 0

    @classmethod
    def for_suite(cls, suite: str, quick: bool = False, **overrides) -> "Options":
        o = cls(suite=suite)
        if suite == "gpu":
            o.iters, o.e2e_iters, o.throughput_batch, o.throughput_iters = 500, 300, 256, 50
            o.train_batch, o.train_iters, o.peer_iters, o.clip_length = 64, 30, 300, 4
        if quick:
            o.models = ("mobilenet",)
            o.frames = ((480, 640),)
            o.sections = ("latency", "e2e", "throughput", "peers", "paired")
            o.warmup, o.iters, o.e2e_iters, o.throughput_batch, o.throughput_iters = 3, 30, 15, 4, 3
            o.paired_rounds, o.paired_block = 8, 8
            o.peer_iters, o.bf16_latency, o.e2e_composite = 30, False, False
        for k, v in overrides.items():
            if v is not None:
                setattr(o, k, v)
        return o
