"""Shared input validation for lib.ops: errors that name the offending argument."""

from collections.abc import Sequence

import jax.numpy as jnp


def check_rank(name: str, x, ranks: int | Sequence[int]) -> None:
    """Raise ValueError unless `x.ndim` is one of `ranks`."""
    ranks = (ranks,) if isinstance(ranks, int) else tuple(ranks)
    if jnp.ndim(x) not in ranks:
        want = " or ".join(str(r) for r in ranks)
        raise ValueError(f"`{name}` must have rank {want}, got shape {jnp.shape(x)}")


def check_shape(name: str, x, shape: Sequence[int | None]) -> None:
    """Raise ValueError unless `x.shape` matches `shape` (None matches any size)."""
    got = tuple(jnp.shape(x))
    if len(got) != len(shape) or any(s is not None and s != g for s, g in zip(shape, got)):
        want = tuple("?" if s is None else s for s in shape)
        raise ValueError(f"`{name}` must have shape {want}, got {got}")


def check_method(method: str, allowed: Sequence[str]) -> None:
    """Raise ValueError for a `method=` value outside `allowed`."""
    if method not in allowed:
        raise ValueError(f"unknown method={method!r}; expected one of {sorted(allowed)}")


def on_accelerator() -> bool:
    """True when JAX's default backend is a GPU or TPU (used by method='auto')."""
    import jax

    return jax.default_backend() in ("gpu", "cuda", "rocm", "tpu")
