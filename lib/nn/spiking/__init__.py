"""Linen modules: spiking layers, learnable delays, spiking mixers."""
