"""Low-rank tools: SVD factorization and energy truncation, Maestro's ordered dropout
(Horváth et al. 2023) and Trained Rank Pruning's projection and nuclear-norm subgradient
(Xu et al. 2019).

Conventions: a dense kernel `w: [d_in, d_out]` (Flax's layout, `y = x @ w`) is factorized as
`w ~ u @ v` with `u: [d_in, r]`, `v: [r, d_out]`; singular values are split evenly,
`u = U sqrt(S)`, `v = sqrt(S) V^T`.
"""

import jax
import jax.numpy as jnp


def svd_factorize(w, rank: int):
    """Best rank-r factors `(u [d_in, r], v [r, d_out])` of `w` (Eckart-Young)."""
    if jnp.ndim(w) != 2:
        raise ValueError(f"`w` must be a 2-D kernel [d_in, d_out], got shape {jnp.shape(w)}")
    if not (isinstance(rank, int) and 1 <= rank <= min(w.shape)):
        raise ValueError(f"rank must be an int in [1, {min(w.shape)}] for w {w.shape}, got {rank}")
    uu, s, vt = jnp.linalg.svd(w, full_matrices=False)
    root = jnp.sqrt(s[:rank])
    return uu[:, :rank] * root, root[:, None] * vt[:rank]


def rank_for_energy(singular_values, energy: float = 0.99) -> int:
    """Smallest r keeping `energy` of `sum(s**2)` (concrete values; not jittable)."""
    if not 0 < energy <= 1:
        raise ValueError(f"energy must be in (0, 1], got {energy}")
    e = jnp.cumsum(jnp.asarray(singular_values) ** 2)
    return int(jnp.searchsorted(e / e[-1], energy * (1 - 1e-6)) + 1)


def effective_rank(w, energy: float = 0.99) -> int:
    """The rank keeping `energy` of the squared Frobenius norm of `w`."""
    return rank_for_energy(jnp.linalg.svd(w, compute_uv=False), energy)


def truncate_by_energy(w, energy: float = 0.99):
    """`svd_factorize(w, r)` with r from `rank_for_energy`; returns `(u, v)`."""
    return svd_factorize(w, rank_for_energy(jnp.linalg.svd(w, compute_uv=False), energy))


def rank_mask(rank, max_rank: int, dtype=jnp.float32):
    """`[max_rank]` mask keeping the first `rank` components (rank may be traced)."""
    return (jnp.arange(max_rank) < rank).astype(dtype)


def sample_rank(key, max_rank: int, *, min_rank: int = 1, shape=()):
    """Maestro's ordered-dropout rank, uniform in [min_rank, max_rank]."""
    return jax.random.randint(key, shape, min_rank, max_rank + 1)


def lowrank_apply(x, u, v, rank=None):
    """`x @ u[:, :rank] @ v[:rank]` (ordered dropout keeps a prefix of components).

    Args:
      x: `[..., d_in]`; u: `[d_in, R]`; v: `[R, d_out]`.
      rank: None for all R; an int or traced int scalar for the first `rank` components.

    Returns:
      `[..., d_out]`.
    """
    h = x @ u
    if rank is not None:
        h = h * rank_mask(rank, u.shape[-1], h.dtype)
    return h @ v


def importance_order(u, v):
    """Maestro's ordering: component indices by `||u_i|| * ||v_i||`, largest first."""
    score = jnp.linalg.norm(u, axis=0) * jnp.linalg.norm(v, axis=1)
    return jnp.argsort(-score)


def reorder(u, v, order):
    """Permute the components of `(u, v)` (the product `u @ v` is unchanged)."""
    return u[:, order], v[order]


def principal_angles(a, b):
    """Principal angles (degrees, ascending) between the column spans of `a` and `b`."""
    qa, _ = jnp.linalg.qr(a)
    qb, _ = jnp.linalg.qr(b)
    cos = jnp.clip(jnp.linalg.svd(qa.T @ qb, compute_uv=False), -1.0, 1.0)
    return jnp.sort(jnp.degrees(jnp.arccos(cos)))


def nuclear_norm(w):
    """`sum of singular values`."""
    return jnp.sum(jnp.linalg.svd(w, compute_uv=False))


def nuclear_norm_subgradient(w):
    """A subgradient of the nuclear norm at `w`: `U V^T` from the thin SVD (TRP's regulariser)."""
    uu, _, vt = jnp.linalg.svd(w, full_matrices=False)
    return uu @ vt


def trp_project(w, energy: float = 0.99):
    """TRP's periodic projection: replace `w` by its energy-truncated low-rank approximation.

    Jittable: components beyond the energy threshold are zeroed (the shape is kept).
    """
    uu, s, vt = jnp.linalg.svd(w, full_matrices=False)
    e = jnp.cumsum(s**2)
    keep = jnp.concatenate([jnp.ones((1,), bool), e[:-1] / e[-1] < energy * (1 - 1e-6)])
    return (uu * jnp.where(keep, s, 0.0)) @ vt
