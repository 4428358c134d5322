"""Flax Linen modules that own parameters and call lib.ops."""
