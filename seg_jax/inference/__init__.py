"""Inference: the public Segmenter, the jitted streaming step, the BatchNorm-folded network, compiled-size bound."""
