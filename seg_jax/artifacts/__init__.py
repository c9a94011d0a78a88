"""Artifacts: the weights folder, its manifest, loading any weights source, shipping and exporting."""
