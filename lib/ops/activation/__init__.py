"""Activations and initializations (SELU)."""
