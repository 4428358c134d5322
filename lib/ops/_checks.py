"""Shared input validation for lib.ops: errors that name the offending argument."""

import numbers
from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np


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


def check_float(name: str, x, *, complex_ok: bool = False) -> None:
    """Raise TypeError unless `x` has a floating-point dtype (or complex, with `complex_ok`).

    Integer and boolean inputs are rejected rather than computed in float and cast back, which
    silently truncates the result (a GRU on int32 inputs returned all zeros)."""
    if x is None:
        return
    dtype = jnp.result_type(x)
    if jnp.issubdtype(dtype, jnp.floating):
        return
    if complex_ok and jnp.issubdtype(dtype, jnp.complexfloating):
        return
    kind = "floating-point or complex" if complex_ok else "floating-point"
    raise TypeError(f"`{name}` must have a {kind} dtype, got {dtype}")


def check_floats(complex_ok: bool = False, **arrays) -> None:
    """`check_float` on each keyword argument (None values are skipped)."""
    for name, x in arrays.items():
        check_float(name, x, complex_ok=complex_ok)


def check_positive_int(name: str, value) -> int:
    """Return `value` as an int if it is an integer (Python or NumPy, not bool) >= 1, else raise
    ValueError naming `name` (the one rule for `chunk_size`, `window` and the like)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}")
    if int(value) < 1:
        raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}")
    return int(value)


def check_chunk_size(chunk_size) -> int:
    """The shared rule for `chunk_size`: any integral type >= 1 (returned as int)."""
    return check_positive_int("chunk_size", chunk_size)


def all_finite(*arrays):
    """Scalar bool: every element of every (non-None) array is finite."""
    flags = [jnp.all(jnp.isfinite(x)) for x in arrays if x is not None]
    return jnp.all(jnp.stack(flags)) if flags else jnp.asarray(True)


def finite_or(fast, safe, *arrays):
    """`fast()` when all of `arrays` are finite, else `safe()`.

    Matmul-based (chunked, parallel, FFT) forms multiply masked-out zeros by later inputs, so a
    NaN or inf after position t would reach the output at t (0 * inf = NaN). They route
    non-finite inputs to a form that is causal by construction (a scan that masks by
    selection). Eagerly the predicate is concrete and only one branch runs; under `jit` it is a
    `lax.cond` (under `vmap`, a select: both run, the right one is kept)."""
    import jax

    pred = all_finite(*arrays)
    if not isinstance(pred, jax.core.Tracer):
        return fast() if bool(pred) else safe()
    return jax.lax.cond(pred, fast, safe)
