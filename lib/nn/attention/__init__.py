"""Linen modules: softmax attention: causal, local/chunked, KV cache."""
