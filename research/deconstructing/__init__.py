"""Deconstructing recurrence, attention and gating (forecasting dynamical systems)."""
