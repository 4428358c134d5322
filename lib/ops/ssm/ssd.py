"""Mamba-2's state-space duality, SSD (Dao & Gu 2024, "Transformers are SSMs"), chunked.

A scalar decay per head and time step:

    h_t = exp(dt_t A) h_{t-1} + dt_t x_t B_t^T      h: [b, heads, p, n]
    y_t = h_t C_t + D x_t

Forms (`method=`):
- "scan": `lax.scan` over time, the reference (`ssd_ref`);
- "chunked": the SSD algorithm: inside chunks of `chunk_size` steps a masked (decay-weighted)
  attention-like matmul, across chunks a recurrence on the chunk states. All decays are sums
  of log-decays taken over the exact interval they cover (a masked cumulative sum, never a
  difference of two cumulative sums), so nothing cancels catastrophically, the decays stay in
  [0, 1], and long sequences with strong decays remain finite.

B and C may be shared by groups of heads (`[b, l, groups, n]`, heads % groups == 0), as in
Mamba-2's multi-value attention analogue.

Non-finite values: the chunked form's matmuls multiply masked-out zeros by later inputs, so
inputs holding a NaN or inf take the scan form (`finite_or`), whose steps select rather than
multiply: a zero decay (a segment start, or `dt A = -inf`) drops the state even when it is not
finite. Log-decays of -inf are clamped to -1e30 first (`exp` of either is exactly 0), so exact
zero decays stay on the fast path. Length 0 gives empty outputs and the initial state.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from lib.ops._checks import (
    check_chunk_size,
    check_floats,
    check_method,
    check_rank,
    check_shape,
    finite_or,
)
from lib.ops.scan.linear import linear_recurrence, segment_cut

METHODS = ("auto", "scan", "chunked")
_CUT = -1e30  # log-decay that stands for "state dropped" (a segment starts); exp gives 0


class SSDState(NamedTuple):
    """Step-form state: `h` [batch, heads, head_dim, state_dim], float32."""

    h: jax.Array


def _check(x, dt, A, B, C, D, dt_bias, initial_state):
    check_floats(x=x, dt=dt, A=A, B=B, C=C, D=D, dt_bias=dt_bias, initial_state=initial_state)
    check_rank("x", x, 4)
    b, length, h, p = x.shape
    check_shape("dt", dt, (b, length, h))
    check_shape("A", A, (h,))
    check_rank("B", B, 4)
    check_shape("B", B, (b, length, None, None))
    g, n = B.shape[2:]
    if h % g:
        raise ValueError(f"`B` groups ({g}) must divide the number of heads ({h})")
    check_shape("C", C, (b, length, g, n))
    if D is not None:
        check_shape("D", D, (h,))
    if dt_bias is not None:
        check_shape("dt_bias", dt_bias, (h,))
    if initial_state is not None:
        check_shape("initial_state", initial_state, (b, h, p, n))


def _prepare(x, dt, A, B, C, dt_bias, dt_softplus, segment_ids):
    """float32 inputs, log-decays a = dt A (with cuts), and B, C expanded to heads."""
    heads = x.shape[2]
    dt = dt.astype(jnp.float32)
    if dt_bias is not None:
        dt = dt + dt_bias.astype(jnp.float32)
    if dt_softplus:
        dt = jax.nn.softplus(dt)
    log_a = jnp.maximum(dt * A.astype(jnp.float32), _CUT)  # [b, l, h], <= 0 for A <= 0
    cut = segment_cut(segment_ids, None, length=x.shape[1])
    if cut is not None:
        log_a = jnp.where(cut[..., None], _CUT, log_a)
    rep = heads // B.shape[2]
    B = jnp.repeat(B.astype(jnp.float32), rep, axis=2)
    C = jnp.repeat(C.astype(jnp.float32), rep, axis=2)
    xdt = x.astype(jnp.float32) * dt[..., None]
    return xdt, log_a, B, C


def _scan_form(xdt, log_a, B, C, h0):
    def step(h, xs):
        xdt_t, la_t, B_t, C_t = xs
        decay = jnp.exp(la_t)[..., None, None]
        inp = xdt_t[..., None] * B_t[:, :, None, :]
        h = jnp.where(decay == 0, inp, decay * h + inp)  # a zero decay forgets by selection
        return h, jnp.einsum("bhpn,bhn->bhp", h, C_t)

    h_last, y = lax.scan(step, h0, tuple(jnp.moveaxis(v, 1, 0) for v in (xdt, log_a, B, C)))
    return jnp.moveaxis(y, 0, 1), h_last


def segment_sum(log_a):
    """seg[..., i, j] = sum_{k=j+1}^{i} log_a[..., k] for j <= i, -inf above the diagonal.

    A masked cumulative sum over the exact interval (no difference of prefix sums), so strong
    decays never turn into `inf - inf`. log_a: [..., T] -> [..., T, T].
    """
    t = log_a.shape[-1]
    idx = jnp.arange(t)
    terms = jnp.broadcast_to(log_a[..., :, None], log_a.shape + (t,))  # [..., k, j] = a_k
    masked = jnp.where(idx[:, None] > idx[None, :], terms, 0.0)  # keep k > j
    seg = jnp.cumsum(masked, axis=-2)  # over k up to i: [..., i, j]
    lower = idx[:, None] >= idx[None, :]
    return jnp.where(lower, seg, -jnp.inf)


def _chunked_form(xdt, log_a, B, C, h0, chunk_size):
    b, length, h, p = xdt.shape
    n = B.shape[-1]
    t = max(1, min(chunk_size, length))
    nc = -(-length // t)
    pad = nc * t - length
    if pad:  # log_a = 0 and x dt = 0 on the padding: the state passes through unchanged
        xdt, log_a, B, C = (
            jnp.pad(v, [(0, 0), (0, pad)] + [(0, 0)] * (v.ndim - 2)) for v in (xdt, log_a, B, C)
        )
    xdt = xdt.reshape(b, nc, t, h, p)
    B = B.reshape(b, nc, t, h, n)
    C = C.reshape(b, nc, t, h, n)
    la = jnp.moveaxis(log_a.reshape(b, nc, t, h), 3, 2)  # [b, c, h, t]

    # 1. Inside each chunk: y_i = sum_{j<=i} (C_i . B_j) exp(sum_{j<k<=i} a_k) xdt_j.
    decay = jnp.exp(segment_sum(la))  # [b, c, h, i, j]
    scores = jnp.einsum("bcihn,bcjhn->bchij", C, B) * decay
    y = jnp.einsum("bchij,bcjhp->bcihp", scores, xdt)

    # 2. State contributed by each chunk: decay from step j to the chunk's end (exclusive).
    rev = jnp.flip(jnp.cumsum(jnp.flip(la, -1), -1), -1)  # sum_{k>=j}
    to_end = jnp.concatenate([rev[..., 1:], jnp.zeros_like(rev[..., :1])], -1)  # sum_{k>j}
    chunk_states = jnp.einsum("bcjhn,bchj,bcjhp->bchpn", B, jnp.exp(to_end), xdt)

    # 3. Across chunks: S_c = exp(sum of chunk c's log-decays) S_{c-1} + chunk_states_c.
    chunk_decay = jnp.exp(rev[..., 0])[..., None, None]  # [b, c, h, 1, 1]
    states = linear_recurrence(chunk_decay, chunk_states, h0, method="scan")
    prev = jnp.concatenate([h0[:, None], states[:, :-1]], axis=1)  # entering each chunk

    # 4. The carried state's contribution: exp(sum_{k<=i} a_k) C_i . S_prev.
    from_start = jnp.exp(jnp.cumsum(la, -1))  # [b, c, h, i]
    y = y + jnp.einsum("bcihn,bchpn,bchi->bcihp", C, prev, from_start)
    return y.reshape(b, nc * t, h, p)[:, :length], states[:, -1]


def resolve_method(method: str, length: int) -> str:
    """The concrete form `method` stands for at `length`."""
    check_method(method, METHODS)
    if method == "auto":
        return "chunked"
    return method


def ssd(
    x,
    dt,
    A,
    B,
    C,
    D=None,
    *,
    dt_bias=None,
    dt_softplus: bool = False,
    initial_state=None,
    return_final_state: bool = False,
    segment_ids=None,
    chunk_size: int = 64,
    method: str = "auto",
):
    """Mamba-2 SSD (see the module docstring).

    Args:
      x: inputs [b, l, heads, p].
      dt: step sizes [b, l, heads] (before `dt_bias`/softplus).
      A: per-head decay rate [heads], negative (log-decay per step is dt * A).
      B, C: [b, l, groups, n], heads % groups == 0.
      D: optional skip [heads].
      dt_bias: optional [heads], added to dt before the softplus.
      dt_softplus: apply softplus to dt (+ bias).
      initial_state: [b, heads, p, n] (zeros when None).
      return_final_state: also return the state after the last step (float32).
      segment_ids: optional [b, l] ints for packed batches (state restarts at each new id,
        and at position 0, ignoring `initial_state`).
      chunk_size: chunk length for "chunked" (results do not depend on it).
      method: "auto", "scan" (reference) or "chunked".

    Returns:
      y [b, l, heads, p] in x's dtype; and the final state when asked.
    """
    _check(x, dt, A, B, C, D, dt_bias, initial_state)
    chunk_size = check_chunk_size(chunk_size)
    method = resolve_method(method, x.shape[1])
    b, length, h, p = x.shape
    n = B.shape[-1]
    if segment_ids is not None:
        check_shape("segment_ids", segment_ids, (b, length))
    if length == 0:  # empty outputs; the final state is the initial one
        y = jnp.zeros(x.shape, x.dtype)
        h0 = jnp.zeros((b, h, p, n), jnp.float32)
        h0 = h0 if initial_state is None else initial_state.astype(jnp.float32)
        return (y, h0) if return_final_state else y
    xdt, log_a, Bh, Ch = _prepare(x, dt, A, B, C, dt_bias, dt_softplus, segment_ids)
    h0 = (
        jnp.zeros((b, h, p, n), jnp.float32)
        if initial_state is None
        else initial_state.astype(jnp.float32)
    )
    if method == "scan":
        y, h_last = _scan_form(xdt, log_a, Bh, Ch, h0)
    else:
        y, h_last = finite_or(
            lambda: _chunked_form(xdt, log_a, Bh, Ch, h0, chunk_size),
            lambda: _scan_form(xdt, log_a, Bh, Ch, h0),
            xdt, log_a, Bh, Ch, h0,
        )  # fmt: skip
    if D is not None:
        y = y + x.astype(jnp.float32) * D.astype(jnp.float32)[:, None]
    y = y.astype(x.dtype)
    return (y, h_last) if return_final_state else y


def ssd_ref(x, dt, A, B, C, D=None, **kwargs):
    """The reference form: `ssd(..., method="scan")`."""
    return ssd(x, dt, A, B, C, D, method="scan", **kwargs)


def ssd_init_state(batch_size: int, heads: int, head_dim: int, state_dim: int) -> SSDState:
    """Zero step state, h [batch, heads, head_dim, state_dim] float32."""
    return SSDState(h=jnp.zeros((batch_size, heads, head_dim, state_dim), jnp.float32))


def ssd_step(state: SSDState, x_t, dt_t, A, B_t, C_t, D=None, *, dt_bias=None, dt_softplus=False):
    """One streaming step: returns `(new_state, y_t)`.

    Args:
      state: `SSDState`, h [b, heads, p, n].
      x_t: [b, heads, p];  dt_t: [b, heads];  B_t, C_t: [b, groups, n];  A, D, dt_bias as
        in `ssd`.
    """
    check_floats(x_t=x_t, dt_t=dt_t, A=A, B_t=B_t, C_t=C_t, D=D)
    xdt, log_a, Bh, Ch = _prepare(
        x_t[:, None], dt_t[:, None], A, B_t[:, None], C_t[:, None], dt_bias, dt_softplus, None
    )
    decay = jnp.exp(log_a[:, 0])[..., None, None]
    inp = xdt[:, 0, ..., None] * Bh[:, 0, :, None]
    h = jnp.where(decay == 0, inp, decay * state.h + inp)
    y = jnp.einsum("bhpn,bhn->bhp", h, Ch[:, 0])
    if D is not None:
        y = y + x_t.astype(jnp.float32) * D.astype(jnp.float32)[:, None]
    return SSDState(h=h), y.astype(x_t.dtype)
