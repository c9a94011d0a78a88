"""Evaluation: metrics, the held-out protocols, peers beside, reports, model cards and the ship rule."""
