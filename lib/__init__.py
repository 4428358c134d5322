"""brainseq lib: ops (pure functions), nn (Linen modules), train, data, kernels."""
