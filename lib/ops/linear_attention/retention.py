"""Retention, RetNet's multi-scale decayed linear attention (Sun et al. 2023, RetNet).

`S_t = gamma S_{t-1} + k_t^T v_t`, `o_t = scale * q_t S_t` with a fixed decay `gamma_h` per head:
GLA with a constant scalar gate `g = log(gamma)`. Three equal forms: the recurrence
(`method="ref"`), the parallel quadratic form `((q k^T) * D) v` with the masked decay matrix
`D_ts = gamma^(t-s)` (`"parallel"`), and GLA's chunked form (`"chunked"`).
Shapes: `q, k: [b, l, h, dk]`, `v: [b, l, h, dv]`, `gamma: [h]`, state `[b, h, dk, dv]`.

`gamma = 0` is exact in every form (`gamma^0 = 1`, never `0 * log 0`); the parallel form routes
inputs holding a NaN or inf to the recurrence (its matmuls would multiply masked zeros by later
values). Length 0 gives empty outputs and the initial state.
"""

import jax.numpy as jnp

from lib.ops._checks import (
    check_chunk_size,
    check_floats,
    check_method,
    check_rank,
    check_shape,
    finite_or,
    on_accelerator,
)
from lib.ops.linear_attention.gated import gla, gla_step


def retnet_decays(num_heads):
    """RetNet's per-head decays `gamma_h = 1 - 2^(-5 - h)`, `[num_heads]` float32."""
    return 1.0 - 2.0 ** (-5.0 - jnp.arange(num_heads, dtype=jnp.float32))


def _log_gamma(gamma, q):
    h = q.shape[2]
    gamma = retnet_decays(h) if gamma is None else jnp.asarray(gamma, jnp.float32)
    check_shape("gamma", gamma, (h,))
    return jnp.log(gamma)


def _log_power(log_gamma, n):
    """`n * log_gamma` with `gamma^0 = 1` exactly (so `gamma = 0` never gives `0 * -inf`)."""
    return jnp.where(n == 0, 0.0, n * log_gamma)


def retention_parallel(q, k, v, log_gamma, *, scale, initial_state=None):
    """The quadratic form: `o = scale * ((q k^T) * D) v (+ the initial state's decayed read-out)`.

    Returns `(o [b, l, h, dv], final_state [b, h, dk, dv])`, float32.
    """
    f32 = jnp.float32
    q, k, v = (x.astype(f32) for x in (q, k, v))
    length = q.shape[1]
    t = jnp.arange(length, dtype=f32)
    diff = t[:, None] - t[None, :]
    causal = diff >= 0
    log_d = jnp.where(causal, _log_power(log_gamma[:, None, None], diff[None]), -jnp.inf)
    scores = jnp.einsum("bthk,bshk->bhts", q, k) * jnp.exp(log_d)  # [b, h, l, l]
    scores = jnp.where(causal, scores, 0.0)
    o = jnp.einsum("bhts,bshv->bthv", scores, v)
    to_end = jnp.exp(_log_power(log_gamma, (length - 1 - t)[:, None]))  # [l, h]
    S = jnp.einsum("bshk,bshv,sh->bhkv", k, v, to_end)
    if initial_state is not None:
        S0 = initial_state.astype(f32)
        from_start = jnp.exp(_log_power(log_gamma, (t + 1)[:, None]))  # [l, h]
        o = o + jnp.einsum("bthk,bhkv,th->bthv", q, S0, from_start)
        S = S + jnp.exp(_log_power(log_gamma, length))[None, :, None, None] * S0
    return scale * o, S


def retention(
    q,
    k,
    v,
    *,
    gamma=None,
    scale=None,
    initial_state=None,
    return_final_state=False,
    chunk_size=64,
    method="auto",
):
    """Retention over axis 1.

    Args:
      q, k: `[b, l, h, dk]`; v: `[b, l, h, dv]`.
      gamma: `[h]` decays in (0, 1); default `retnet_decays(h)`.
      scale: output scale, default `dk ** -0.5`.
      initial_state: `[b, h, dk, dv]` (default zeros).
      return_final_state: also return the final state (float32).
      chunk_size: chunk length for "chunked".
      method: "ref" (scan), "parallel" (quadratic), "chunked", or "auto" ("chunked"; on
        accelerators "parallel" up to length 256).
    Returns:
      `o [b, l, h, dv]` in `q.dtype`, or `(o, final_state)`.
    """
    check_floats(q=q, k=k, v=v, gamma=gamma, initial_state=initial_state)
    check_rank("q", q, 4)
    check_shape("k", k, q.shape)
    check_rank("v", v, 4)
    check_shape("v", v, (*q.shape[:3], None))
    chunk_size = check_chunk_size(chunk_size)
    if initial_state is not None:
        check_shape(
            "initial_state", initial_state, (q.shape[0], q.shape[2], q.shape[3], v.shape[3])
        )
    check_method(method, ("auto", "ref", "parallel", "chunked"))
    log_gamma = _log_gamma(gamma, q)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    if method == "auto":  # the quadratic form never won on a CPU (benchmarks/mixer_cases)
        method = "parallel" if on_accelerator() and q.shape[1] <= 256 else "chunked"
    g = jnp.broadcast_to(log_gamma, q.shape[:3])
    recurrence = lambda: gla(q, k, v, g, scale=scale, initial_state=initial_state,  # noqa: E731
                             return_final_state=True, method="ref")  # fmt: skip
    if method == "parallel" and q.shape[1] > 0:
        parallel = lambda: retention_parallel(  # noqa: E731
            q, k, v, log_gamma, scale=scale, initial_state=initial_state
        )
        o, S = finite_or(
            lambda: (lambda oS: (oS[0].astype(q.dtype), oS[1]))(parallel()), recurrence,
            q, k, v, initial_state,
        )  # fmt: skip
    else:  # length 0 ("parallel" included): gla's rule, empty outputs and the initial state
        method = "ref" if method == "parallel" else method
        o, S = gla(q, k, v, g, scale=scale, initial_state=initial_state, return_final_state=True,
                   chunk_size=chunk_size, method=method)  # fmt: skip
    return (o, S) if return_final_state else o


def retention_step(state, q_t, k_t, v_t, *, gamma=None, scale=None):
    """One token: `state [b, h, dk, dv]`, `q_t, k_t [b, h, dk]`, `v_t [b, h, dv]` ->
    `(state, o_t [b, h, dv])`."""
    check_floats(q_t=q_t, k_t=k_t, v_t=v_t)
    check_rank("q_t", q_t, 3)
    log_gamma = _log_gamma(gamma, q_t[:, None])
    g_t = jnp.broadcast_to(log_gamma, q_t.shape[:2])
    return gla_step(state, q_t, k_t, v_t, g_t, scale=scale)
