"""Linen modules: low-rank factorization."""
