"""Sparsity: pruning masks, N:M, dense x sparse factorization."""
