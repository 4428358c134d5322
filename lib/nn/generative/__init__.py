"""Home of the generative family (diffusion, flow matching, samplers, guidance); filled by the coming papers."""
