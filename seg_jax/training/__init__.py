"""Training: the loop, pure steps, losses, pre-flight checks, Orbax checkpoints, metric records."""
