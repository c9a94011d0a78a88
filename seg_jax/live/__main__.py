"""Entry point: ``python -m seg_jax.live --source sample --mode blur --output runs/blur.mp4``."""
import sys

from seg_jax.live.cli import main

if __name__ == "__main__":
    sys.exit(main())
