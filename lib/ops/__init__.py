"""Pure array functions: sequence mixers, spiking ops, quantization. No Flax, no state."""
