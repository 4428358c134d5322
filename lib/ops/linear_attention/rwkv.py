"""RWKV-6 ("Finch") time mixing: token shift and data-dependent decay (Peng et al. 2024, Eagle/Finch).

The WKV recurrence with a per-channel bonus `u` for the current token:
  `o_t = r_t (S_{t-1} + diag(u) k_t^T v_t)`,  `S_t = diag(w_t) S_{t-1} + k_t^T v_t`,
with `w_t = exp(g_t)`, `g_t <= 0` the log decay (RWKV-6 uses `g = -exp(decay logits)`).
Shapes: `r, k, g: [b, l, h, dk]`, `v: [b, l, h, dv]`, `u: [h, dk]`, state `[b, h, dk, dv]`.

The chunked form reuses `gla`: `r_t S_{t-1}` is GLA's output at `t` on the inputs shifted one
step (`k_{t-1}, v_{t-1}, g_{t-1}`), whose state at `t` is exactly `S_{t-1}`.
"""

import jax
import jax.numpy as jnp

from lib.ops._checks import check_chunk_size, check_floats, check_method, check_rank, check_shape
from lib.ops.linear_attention.gated import _auto_method, gla


def token_shift(x, prev=None):
    """`x_{t-1}` along axis 1 (`prev` or zeros before the first position).

    Args:
      x: `[b, l, ...]`.
      prev: optional `[b, ...]`, the input just before `x[:, 0]` (the shift state).
    Returns:
      `[b, l, ...]` shifted inputs.
    """
    first = jnp.zeros_like(x[:, :1]) if prev is None else prev[:, None].astype(x.dtype)
    return jnp.concatenate([first, x[:, :-1]], axis=1)


def _check(r, k, v, g, u, initial_state):
    check_floats(r=r, k=k, v=v, g=g, u=u, initial_state=initial_state)
    check_rank("r", r, 4)
    check_shape("k", k, r.shape)
    check_shape("g", g, r.shape)
    check_rank("v", v, 4)
    check_shape("v", v, (*r.shape[:3], None))
    check_shape("u", u, r.shape[2:])
    if initial_state is not None:
        check_shape("initial_state", initial_state, (r.shape[0], *r.shape[2:], v.shape[-1]))


def rwkv6_step(state, r_t, k_t, v_t, g_t, u):
    """One token: `state [b, h, dk, dv]`, `r_t, k_t, g_t [b, h, dk]`, `v_t [b, h, dv]`, `u [h, dk]`
    -> `(state, o_t [b, h, dv])`."""
    f32 = jnp.float32
    check_floats(state=state, r_t=r_t, k_t=k_t, v_t=v_t, g_t=g_t, u=u)
    r_t, k_t, v_t, g_t = (x.astype(f32) for x in (r_t, k_t, v_t, g_t))
    kv = k_t[..., :, None] * v_t[..., None, :]
    o = jnp.einsum("bhk,bhkv->bhv", r_t, state + u.astype(f32)[..., None] * kv)
    return jnp.exp(g_t)[..., None] * state + kv, o


def rwkv6_ref(r, k, v, g, u, *, initial_state=None):
    """The recurrence as a `lax.scan`; returns `(o [b, l, h, dv], final_state)` (float32)."""
    _check(r, k, v, g, u, initial_state)
    b, _, h, dk = r.shape
    S0 = jnp.zeros((b, h, dk, v.shape[-1]), jnp.float32) if initial_state is None else initial_state
    xs = [jnp.swapaxes(x, 0, 1) for x in (r, k, v, g)]
    S, o = jax.lax.scan(lambda S, x: rwkv6_step(S, *x, u), S0.astype(jnp.float32), xs)
    return jnp.swapaxes(o, 0, 1), S


def rwkv6(
    r, k, v, g, u, *, initial_state=None, return_final_state=False, chunk_size=64, method="auto"
):
    """RWKV-6 WKV over axis 1.

    Args:
      r, k: `[b, l, h, dk]` receptance and key; v: `[b, l, h, dv]`.
      g: `[b, l, h, dk]` log decay (<= 0).
      u: `[h, dk]` bonus for the current token.
      initial_state: `[b, h, dk, dv]` (default zeros).
      return_final_state: also return the final state (float32).
      chunk_size: chunk length for "chunked".
      method: "ref" (scan), "chunked" (via `gla`), or "auto" (as `gla`'s: the scan on a CPU
        for tiny heads, else "chunked").
    Returns:
      `o [b, l, h, dv]` in `r.dtype`, or `(o, final_state)`.
    """
    _check(r, k, v, g, u, initial_state)
    check_method(method, ("auto", "ref", "chunked"))
    chunk_size = check_chunk_size(chunk_size)
    if r.shape[1] == 0:  # empty outputs; the final state is the initial one (as gla's rule)
        method = "ref"
    if method == "auto":  # the same choice as gla's (measured in benchmarks/mixer_cases)
        method = _auto_method(r.shape[1], r.shape[-1] * v.shape[-1], False)
    if method == "ref":
        o, S = rwkv6_ref(r, k, v, g, u, initial_state=initial_state)
    else:
        f32 = jnp.float32
        r32, k32, v32, g32 = (x.astype(f32) for x in (r, k, v, g))
        o, S_prev = gla(r32, token_shift(k32), token_shift(v32), token_shift(g32), scale=1.0,
                        initial_state=initial_state, return_final_state=True,
                        chunk_size=chunk_size, method="chunked")  # fmt: skip
        bonus = jnp.einsum("blhk,hk,blhk->blh", r32, u.astype(f32), k32)
        o = o + bonus[..., None] * v32
        kv_last = k32[:, -1, :, :, None] * v32[:, -1, :, None, :]
        S = jnp.exp(g32[:, -1])[..., None] * S_prev + kv_last
    o = o.astype(r.dtype)
    return (o, S) if return_final_state else o
