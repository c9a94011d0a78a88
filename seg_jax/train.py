"""``python -m seg_jax.train``: Train a model.

The code lives in :mod:`seg_jax.training.loop`."""
from seg_jax.training.loop import main

if __name__ == "__main__":
    main()
