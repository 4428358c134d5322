"""Hierarchical Reasoning Model (Wang et al. 2025)."""
