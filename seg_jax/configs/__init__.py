"""Shared config defaults; experiment files in ``configs/`` start from these."""
from seg_jax.configs.default import apply_variant, get_default_config

__all__ = ["get_default_config", "apply_variant"]
