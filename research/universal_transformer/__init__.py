"""Universal Transformer with ACT (Dehghani et al. 2019) on algorithmic tasks with length splits."""
