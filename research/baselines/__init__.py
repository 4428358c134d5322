"""Baselines: GRU, LSTM and causal Transformer character/token language models."""
