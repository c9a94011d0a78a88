"""``python -m seg_jax.evaluate``: Evaluate a model on the held-out split, peers beside.

The code lives in :mod:`seg_jax.evaluation.evaluate`."""
from seg_jax.evaluation.evaluate import main

if __name__ == "__main__":
    main()
