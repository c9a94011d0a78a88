"""``python -m seg_jax.ship_rule``: Decide whether a candidate's evaluation may replace the shipped one.

The code lives in :mod:`seg_jax.evaluation.ship_rule`."""
import sys

from seg_jax.evaluation.ship_rule import main

if __name__ == "__main__":
    sys.exit(main())
