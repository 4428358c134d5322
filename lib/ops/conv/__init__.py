"""Convolutions over time: causal depthwise, long FFT convolutions, TCN, FSMN."""
