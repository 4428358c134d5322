"""Linen modules: convolutions over time: causal depthwise, long FFT convolutions, TCN, FSMN."""
