"""One-off tuning and research scripts: run from the repository root, ``python -m research.<name>``."""
