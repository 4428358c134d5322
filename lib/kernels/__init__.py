"""Optional accelerator kernels (Pallas), each with an lib.ops twin as its reference."""
