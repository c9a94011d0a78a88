"""``python -m seg_jax.model_card``: Write MODEL_CARD.md for a shipped weights folder.

The code lives in :mod:`seg_jax.evaluation.model_card`."""
import sys

from seg_jax.evaluation.model_card import main

if __name__ == "__main__":
    sys.exit(main())
