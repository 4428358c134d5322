"""Home of the sim family (simulators (physics, neuroscience, biosignals) and neural operators); filled by the coming papers."""
