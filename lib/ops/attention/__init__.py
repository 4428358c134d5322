"""Softmax attention: causal, local/chunked, KV cache."""
