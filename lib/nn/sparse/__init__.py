"""Linen modules: sparsity: pruning masks, N:M, dense x sparse factorization."""
