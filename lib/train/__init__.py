"""Train state, pure train/eval steps, the loop, checkpoints, metrics, sharding."""
