"""GPU peer: torchvision LR-ASPP MobileNetV3-Large, eager and ``torch.compile`` (random weights: speed only),
in this process when torch is importable."""
from __future__ import annotations

import time
from typing import Any

from seg_jax.bench.timing import summarize


def run_torchvision_lraspp(*, sizes: list[tuple[int, int]], batch_sizes: list[int], warmup: int, iters: int,
                           compile_modes: tuple[str, ...] = ("eager", "compile")) -> dict[str, Any]:
    """torchvision LR-ASPP MobileNetV3-Large on GPU (random weights), eager and torch.compile.

    Written for an H100 (CUDA, cuda events, channels_last); not runnable without a GPU + torch.
    """
    try:
        import torch
        import torchvision
    except ImportError as e:
        return {"status": "skipped", "reason": f"torch/torchvision not importable: {e}"}
    if not torch.cuda.is_available():
        return {"status": "skipped", "reason": "no CUDA device for torch"}
    dev = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    model = torchvision.models.segmentation.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None,
                                                                      num_classes=1).eval().to(dev)
    model = model.to(memory_format=torch.channels_last)
    results = []
    for mode in compile_modes:
        # reduce-overhead = inductor kernels + CUDA graphs: the peer's best batch-1 latency setting.
        net = model if mode == "eager" else torch.compile(model, mode="reduce-overhead")
        for dtype_name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
            for (h, w) in sizes:
                for b in batch_sizes:
                    frames = torch.randint(0, 256, (b, h, w, 3), dtype=torch.uint8, device=dev)

                    def call():
                        with torch.inference_mode(), torch.autocast("cuda", dtype=dtype,
                                                                    enabled=dtype != torch.float32):
                            x = frames.permute(0, 3, 1, 2).float().div_(255.0).contiguous(
                                memory_format=torch.channels_last)
                            return torch.sigmoid(net(x)["out"])
                    t0 = time.perf_counter()
                    call()
                    torch.cuda.synchronize()
                    first_call_s = time.perf_counter() - t0
                    for _ in range(warmup):
                        call()
                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                    times = []
                    for _ in range(iters):
                        t0 = time.perf_counter()
                        call()
                        torch.cuda.synchronize()
                        times.append(time.perf_counter() - t0)
                    results.append({"model": "lraspp_mobilenet_v3_large", "mode": mode, "dtype": dtype_name,
                                    "size": [h, w], "batch": b, "first_call_s": first_call_s,
                                    "peak_bytes": int(torch.cuda.max_memory_allocated()),
                                    **summarize(times, None, b)})
    return {"status": "ok", "torch": torch.__version__, "torchvision": torchvision.__version__,
            "device": torch.cuda.get_device_name(0), "results": results}
