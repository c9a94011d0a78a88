"""Other tools run beside seg_jax on the same frames: MediaPipe's selfie segmenter (in its own virtualenv, as a
subprocess; used by the evaluator and the bench) and torchvision's LR-ASPP (GPU speed only)."""
