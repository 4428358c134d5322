"""Linen modules: quantized layers (QAT, LSQ)."""
