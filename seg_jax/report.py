"""``python -m seg_jax.report``: Regenerate the results pages from results/*.json.

The code lives in :mod:`seg_jax.evaluation.report`."""
from seg_jax.evaluation.report import main

if __name__ == "__main__":
    main()
