"""Gated linear attention: recurrent, chunked and step forms (Yang et al. 2024, GLA).

`S_t = diag(exp(g_t)) S_{t-1} + k_t^T v_t`, `o_t = scale * q_t S_t`, with a log forget gate
`g <= 0`. Shapes: `q, k: [b, l, h, dk]`, `v: [b, l, h, dv]`, `g: [b, l, h, dk]` (vector gate) or
`[b, l, h]` (one gate per head: RetNet's retention, Mamba-2's SSD); state `[b, h, dk, dv]`.

The chunked form never exponentiates a positive number: across chunks it decays by
`exp(b_last - b_s)` and `exp(b_t)` (cumulative log gates `b`, which only decrease); inside a
chunk it splits into sub-chunks and measures the gates against a reference point at the start
of each query sub-chunk, computing the diagonal sub-chunk blocks pairwise. Strong decays
(`g ~ -20` per step) therefore underflow to exact zeros instead of overflowing.

Exact zero decays and non-finite values: the chunked and Pallas forms clamp log gates at
`G_FLOOR = -128` (`exp` of it is exactly 0 in float32, as `exp(-inf)` is), so a gate of -inf
never meets `-inf - (-inf)`; the scalar-gate form sums log gates over exact intervals (no
differences of cumulative sums at all). Their matmuls multiply masked-out zeros by later inputs,
so inputs holding a NaN or inf take the recurrence (`finite_or`), which masks by selection.
Length 0 gives empty outputs and the initial state.
"""

import jax
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
from lib.ops.ssm.ssd import segment_sum

_NEG = -1e30  # masked log-decays: exp() of it is exactly 0, and gradients stay finite
G_FLOOR = -128.0  # log gates are clamped here in the chunked forms: exp(G_FLOOR) == 0 in f32
_SUB = 16  # sub-chunk length of the chunked vector-gate form


def _resets(segment_ids, b, length):
    """Monotone segment index (0 at t=0, +1 at every change of `segment_ids`)."""
    if segment_ids is None:
        return jnp.zeros((b, length), jnp.int32)
    change = jnp.concatenate(
        [jnp.zeros((b, 1), bool), segment_ids[:, 1:] != segment_ids[:, :-1]], axis=1
    )
    return jnp.cumsum(change.astype(jnp.int32), axis=1)


def _check(q, k, v, g, initial_state, segment_ids):
    check_floats(q=q, k=k, v=v, g=g, initial_state=initial_state)
    check_rank("q", q, 4)
    b, length, h, dk = q.shape
    check_shape("k", k, (b, length, h, dk))
    check_rank("v", v, 4)
    check_shape("v", v, (b, length, h, None))
    check_rank("g", g, (3, 4))
    check_shape("g", g, (b, length, h, dk)[: g.ndim])
    if initial_state is not None:
        check_shape("initial_state", initial_state, (b, h, dk, v.shape[-1]))
    if segment_ids is not None:
        check_shape("segment_ids", segment_ids, (b, length))


def gla_ref(q, k, v, g, *, scale=None, initial_state=None, segment_ids=None):
    """The recurrence itself, a `lax.scan` over time (float32 state).

    Args: as `gla`. Returns: `(o [b, l, h, dv], final_state [b, h, dk, dv] float32)`.
    """
    _check(q, k, v, g, initial_state, segment_ids)
    b, length, h, dk = q.shape
    dv = v.shape[-1]
    scale = dk**-0.5 if scale is None else scale
    seg = _resets(segment_ids, b, length)
    reset = jnp.concatenate([jnp.zeros((b, 1), bool), seg[:, 1:] != seg[:, :-1]], axis=1)
    f32 = jnp.float32
    S0 = jnp.zeros((b, h, dk, dv), f32) if initial_state is None else initial_state.astype(f32)

    def step(S, inputs):
        q_t, k_t, v_t, g_t, r_t = inputs
        decay = jnp.exp(g_t)[..., None] if g_t.ndim == 3 else jnp.exp(g_t)[..., None, None]
        S = jnp.where(r_t[:, None, None, None], 0.0, S)
        S = decay * S + k_t[..., :, None] * v_t[..., None, :]
        return S, scale * jnp.einsum("bhk,bhkv->bhv", q_t, S)

    xs = [jnp.swapaxes(x.astype(f32), 0, 1) for x in (q, k, v, g)] + [reset.T]
    S, o = jax.lax.scan(step, S0, xs)
    return jnp.swapaxes(o, 0, 1).astype(q.dtype), S


def gla_step(state, q_t, k_t, v_t, g_t, *, scale=None):
    """One token: `state [b, h, dk, dv]`, `q_t, k_t [b, h, dk]`, `v_t [b, h, dv]`, `g_t [b, h, dk]`
    or `[b, h]` -> `(state, o_t [b, h, dv])`."""
    check_floats(state=state, q_t=q_t, k_t=k_t, v_t=v_t, g_t=g_t)
    check_rank("q_t", q_t, 3)
    check_shape("k_t", k_t, q_t.shape)
    check_shape("state", state, (*q_t.shape, v_t.shape[-1]))
    scale = q_t.shape[-1] ** -0.5 if scale is None else scale
    f32 = jnp.float32
    g_t = g_t.astype(f32)
    decay = jnp.exp(g_t)[..., None] if g_t.ndim == 3 else jnp.exp(g_t)[..., None, None]
    state = decay * state.astype(f32) + k_t.astype(f32)[..., None] * v_t.astype(f32)[..., None, :]
    return state, (scale * jnp.einsum("bhk,bhkv->bhv", q_t.astype(f32), state)).astype(q_t.dtype)


def _to_chunks(x, n, c):
    """`[b, l, h, ...] -> [b, h, n, c, ...]` (l already padded to n * c)."""
    x = jnp.moveaxis(x, 2, 1)
    return x.reshape(x.shape[0], x.shape[1], n, c, *x.shape[3:])


def _gla_chunked(q, k, v, g, scale, initial_state, segment_ids, chunk_size):
    b, length, h, dk = q.shape
    dv = v.shape[-1]
    scalar = g.ndim == 3
    sub = min(_SUB, chunk_size)
    c = -(-min(chunk_size, length) // sub) * sub  # chunk length, a multiple of `sub`
    if scalar:
        c = min(chunk_size, length)
    n = -(-length // c)
    pad = n * c - length
    f32 = jnp.float32
    seg = _resets(segment_ids, b, length)
    seg = jnp.pad(seg, ((0, 0), (0, pad)), mode="edge")
    padt = lambda x: jnp.pad(x.astype(f32), [(0, 0), (0, pad)] + [(0, 0)] * (x.ndim - 2))
    q, k, v, g = (_to_chunks(padt(x), n, c) for x in (q, k, v, g))  # [b, h, n, c, .]
    seg = jnp.broadcast_to(seg.reshape(b, 1, n, c), (b, h, n, c))
    seg_prev = jnp.concatenate([jnp.zeros_like(seg[:, :, :1, -1]), seg[:, :, :-1, -1]], axis=2)

    bc = jnp.cumsum(g, axis=3)  # cumulative log gate inside each chunk, <= 0
    gk = (lambda x: x[..., None]) if scalar else (lambda x: x)  # broadcast a gate over dk
    b_last = bc[:, :, :, -1]
    same_last = (seg == seg[..., -1:])[..., None]
    # sum of the gates after s up to the chunk's end: a reverse cumsum, not b_last - b_s
    rev = jnp.flip(jnp.cumsum(jnp.flip(g, 3), axis=3), 3)
    to_end = jnp.concatenate([rev[:, :, :, 1:], jnp.zeros_like(rev[:, :, :, :1])], axis=3)
    k_to_end = jnp.where(same_last, k * jnp.exp(gk(to_end)), 0.0)
    dS = jnp.einsum("bhnck,bhncv->bhnkv", k_to_end, v)
    keep = (seg[..., -1] == seg_prev)[..., None, None]  # no reset inside the chunk
    decay = jnp.exp(b_last)[..., None] if not scalar else jnp.exp(b_last)[..., None, None]

    def carry(S, inputs):
        dS_n, decay_n, keep_n = inputs
        return jnp.where(keep_n, decay_n * S, 0.0) + dS_n, S

    S0 = jnp.zeros((b, h, dk, dv), f32) if initial_state is None else initial_state.astype(f32)
    xs = [jnp.moveaxis(x, 2, 0) for x in (dS, decay, keep)]
    S_final, S_in = jax.lax.scan(carry, S0, xs)
    S_in = jnp.moveaxis(S_in, 0, 2)  # state entering each chunk, [b, h, n, dk, dv]

    q_dec = jnp.where((seg == seg_prev[..., None])[..., None], q * jnp.exp(gk(bc)), 0.0)
    o = jnp.einsum("bhnck,bhnkv->bhncv", q_dec, S_in)
    t = jnp.arange(c)
    causal = (t[:, None] >= t[None, :]) & (seg[..., :, None] == seg[..., None, :])
    if scalar:  # log decays summed over the exact interval (s, t]: no -inf - -inf
        log_d = jnp.where(causal, jnp.maximum(segment_sum(g), _NEG), _NEG)
        att = jnp.where(causal, jnp.einsum("bhntk,bhnsk->bhnts", q, k) * jnp.exp(log_d), 0.0)
    else:
        att = _intra_vector(q, k, bc, causal, sub)
    o = o + jnp.einsum("bhnts,bhnsv->bhntv", att, v)
    o = jnp.moveaxis((scale * o).reshape(b, h, n * c, dv)[:, :, :length], 1, 2)
    return o, S_final


def _intra_vector(q, k, bc, mask, sub):
    """Intra-chunk scores `sum_d q_td k_sd exp(b_td - b_sd)` for `s <= t`, `[b, h, n, c, c]`."""
    b, h, n, c, dk = q.shape
    m = c // sub
    qs, ks, bs = (x.reshape(b, h, n, m, sub, dk) for x in (q, k, bc))
    # off-diagonal blocks (key sub-chunk j < query sub-chunk i): reference r_i = b just before i
    r = jnp.concatenate([jnp.zeros_like(bs[:, :, :, :1, -1]), bs[:, :, :, :-1, -1]], axis=3)
    q_ref = qs * jnp.exp(bs - r[:, :, :, :, None])  # [b, h, n, m, sub, dk]
    ij = jnp.arange(m)[:, None] > jnp.arange(m)[None, :]
    log_k = jnp.where(ij[:, :, None, None], r[..., :, None, None, :] - bs[..., None, :, :, :], _NEG)
    k_ref = ks[..., None, :, :, :] * jnp.exp(log_k)  # [b, h, n, m(i), m(j), sub, dk]
    off = jnp.einsum("bhnitk,bhnijsk->bhnitjs", q_ref, k_ref)
    # diagonal blocks, pairwise inside each sub-chunk
    u = jnp.arange(sub)
    low = (u[:, None] >= u[None, :])[..., None]
    log_d = jnp.where(low, bs[..., :, None, :] - bs[..., None, :, :], _NEG)
    diag = jnp.einsum("bhnitk,bhnisk,bhnitsk->bhnits", qs, ks, jnp.exp(log_d))
    eye = jnp.eye(m, dtype=bool)[:, None, :, None]
    att = off + jnp.where(eye, diag[..., :, :, None, :], 0.0)
    return jnp.where(mask, att.reshape(b, h, n, c, c), 0.0)


def _auto_method(length, state_size, scalar_gate):
    """The form `method="auto"` picks. Measured on a 2-core CPU (benchmarks/mixer_cases):
    the scan wins for tiny heads (dk * dv = 256: 30 vs 42 ms fwd+bwd at l=1024) and loses for
    real ones (dk * dv = 4096: 1290 vs 430 ms); the scalar-gate chunked form always wins there.
    On accelerators the chunked (matmul) form is the one to use."""
    if length <= 8:
        return "ref"
    if on_accelerator() or scalar_gate or state_size > 1024:
        return "chunked"
    return "ref"


def gla(
    q,
    k,
    v,
    g,
    *,
    scale=None,
    initial_state=None,
    return_final_state=False,
    chunk_size=64,
    method="auto",
    segment_ids=None,
):
    """Gated linear attention over axis 1 (see the module docstring for the recurrence).

    Args:
      q, k: `[b, l, h, dk]`; v: `[b, l, h, dv]`.
      g: log forget gate (<= 0), `[b, l, h, dk]` or one per head `[b, l, h]`.
      scale: output scale, default `dk ** -0.5`.
      initial_state: `[b, h, dk, dv]` state before the first position (default zeros).
      return_final_state: also return the state after the last position (float32).
      chunk_size: chunk length of the chunked form (the result does not depend on it).
      method: "ref" (`lax.scan`), "chunked" (matmuls per chunk), "pallas" (the kernel in
        `lib.kernels.gla`, on a GPU/TPU and without `segment_ids`; "chunked" otherwise), or
        "auto" ("pallas" where it applies, else see `_auto_method`).
      segment_ids: optional `[b, l]` ints; the state resets to zero wherever the id changes
        (packed sequences). `initial_state` belongs to the first segment.
    Returns:
      `o [b, l, h, dv]` in `q.dtype`, or `(o, final_state)` with `return_final_state`.
    """
    _check(q, k, v, g, initial_state, segment_ids)
    check_method(method, ("auto", "ref", "chunked", "pallas"))
    chunk_size = check_chunk_size(chunk_size)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    if q.shape[1] == 0:  # empty outputs; the final state is the initial one
        b, _, h, dk = q.shape
        S0 = jnp.zeros((b, h, dk, v.shape[-1]), jnp.float32)
        S0 = S0 if initial_state is None else initial_state.astype(jnp.float32)
        o = jnp.zeros((*q.shape[:3], v.shape[-1]), q.dtype)
        return (o, S0) if return_final_state else o
    if method == "auto" and on_accelerator() and segment_ids is None and q.shape[1] > 8:
        method = "pallas"
    if method == "pallas":
        if on_accelerator() and segment_ids is None:
            from lib.kernels.gla import gla_pallas  # noqa: PLC0415 (accelerator-only path)

            return gla_pallas(
                q, k, v, g, scale=scale, initial_state=initial_state,
                return_final_state=return_final_state,
                chunk_size=max(16, -(-chunk_size // 16) * 16),
            )  # fmt: skip
        method = "chunked"  # no accelerator, or resets (the kernel has none): the XLA form
    if method == "auto":
        method = _auto_method(q.shape[1], q.shape[-1] * v.shape[-1], g.ndim == 3)
    if method == "ref":
        o, S = gla_ref(
            q, k, v, g, scale=scale, initial_state=initial_state, segment_ids=segment_ids
        )
    else:
        g = jnp.maximum(g, G_FLOOR)  # exp(G_FLOOR) == exp(-inf) == 0 in float32
        cast = lambda oS: (oS[0].astype(q.dtype), oS[1])  # noqa: E731
        o, S = finite_or(
            lambda: cast(_gla_chunked(q, k, v, g, scale, initial_state, segment_ids, chunk_size)),
            lambda: cast(gla_ref(
                q, k, v, g, scale=scale, initial_state=initial_state, segment_ids=segment_ids
            )),
            q, k, v, g, initial_state,
        )  # fmt: skip
    return (o, S) if return_final_state else o
