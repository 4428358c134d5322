"""Sequential scans with a quantized carry: the state-space and linear-attention recurrences
(diagonal SSMs, Mamba's selective scan, GLA/RetNet, RWKV-6, the LMU's Legendre memory) with a
`carry_fn` applied to the new state after every step (a fixed-point recurrent state).

Rounding the carry at every step makes the recurrence nonlinear, so none of these has a
parallel (associative, chunked or convolution) form: each full form is a `lax.scan` of its own
`*_step` form, so step-by-step equals the full sequence exactly. The quantizers are plain
callables (`lib.nn.quant.layers.QuantConfig.state_fn` builds them), straight-through, so the same
functions serve QAT and the integer-inference error study. `carry_fn=None` is the float
recurrence. The recurrent cells (LSTM, GRU, EGRU, minGRU, minLSTM) are in `lib.ops.quant.rnn`.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from lib.ops._checks import check_rank, check_shape
from lib.ops.linear_attention.gated import _check as _check_gla
from lib.ops.linear_attention.rwkv import _check as _check_rwkv6
from lib.ops.ssm.selective import _check as _check_selective
from lib.ops.ssm.selective import discretize_delta

Fn = Callable[[jax.Array], jax.Array]


def _identity(x):
    return x


def _f32(x):
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def _scan_time(step, carry, xs):
    """`lax.scan` of `step` over axis 1 of every array in `xs`; outputs back batch-first."""
    carry, ys = jax.lax.scan(step, carry, jax.tree.map(lambda v: jnp.swapaxes(v, 0, 1), xs))
    return carry, jnp.swapaxes(ys, 0, 1)


# ------------------------------------------------------------------ linear recurrences


def linear_recurrence_carry_quant(
    a, b, h0=None, carry_fn: Fn | None = None, *, return_final_state: bool = False
):
    """`h_t = carry_fn(a_t * h_{t-1} + b_t)` over axis 1, sequentially (a `lax.scan`).

    The quantized-carry twin of `lib.ops.scan.linear_recurrence` (real or complex): once the
    carry is rounded at every step the recurrence is no longer linear, so it has no parallel
    form. Used by minGRU/minLSTM and the diagonal SSMs (LRU, S4D, S5, RG-LRU) with a quantized
    state.

    Args:
      a: decays `[b, l, *f]`, or `[*f]` shared by every batch row and step.
      b: inputs `[b, l, *f]`.  h0: `[b, *f]` (zeros when None).
      carry_fn: quantizer of the carry (None: identity, the plain recurrence).

    Returns:
      `h: [b, l, *f]` [, the final state `[b, *f]`].
    """
    check_rank("b", b, tuple(range(3, 8)))
    fn = carry_fn or _identity
    h0 = jnp.zeros(b.shape[:1] + b.shape[2:], b.dtype) if h0 is None else h0
    check_shape("h0", h0, b.shape[:1] + b.shape[2:])
    if jnp.ndim(a) == b.ndim:
        check_shape("a", a, b.shape)

        def step(h, inp):
            h = fn(inp[0] * h + inp[1])
            return h, h

        final, h = _scan_time(step, h0, (a, b))
    else:
        check_shape("a", a, b.shape[2:])

        def step(h, b_t):
            h = fn(a * h + b_t)
            return h, h

        final, h = _scan_time(step, h0, b)
    return (h, final) if return_final_state else h


# ------------------------------------------------------------------ selective scan, GLA


def selective_scan_carry_quant_step(
    h, u_t, delta_t, A, B_t, C_t, D=None, *, z_t=None, delta_bias=None, delta_softplus=False,
    carry_fn: Fn | None = None,
):  # fmt: skip
    """One step of Mamba's selective scan with `carry_fn` on the new state:
    `h = carry_fn(exp(dt A) h + dt u B)`, `y = C h (+ D u) (* silu(z))`.

    Args: `h: [b, d, n]` float32; `u_t, delta_t, z_t: [b, d]`; `B_t, C_t: [b, n]`; `A: [d, n]`;
    the rest as `lib.ops.ssm.selective_scan`. Returns `(h, y_t [b, d] in u_t.dtype)`.
    """
    dt = discretize_delta(delta_t, delta_bias, delta_softplus)
    u32 = _f32(u_t)
    dA = jnp.exp(dt[..., None] * _f32(A))
    h = (carry_fn or _identity)(dA * h + (dt * u32)[..., None] * _f32(B_t)[:, None, :])
    y = jnp.einsum("bdn,bn->bd", h, _f32(C_t))
    if D is not None:
        y = y + u32 * _f32(D)
    if z_t is not None:
        y = y * jax.nn.silu(_f32(z_t))
    return h, y.astype(u_t.dtype)


def selective_scan_carry_quant(
    u, delta, A, B, C, D=None, *, z=None, delta_bias=None, delta_softplus=False,
    carry_fn: Fn | None = None, initial_state=None, return_final_state=False,
):  # fmt: skip
    """`lib.ops.ssm.selective_scan` with `carry_fn` applied to the state `[b, d, n]` after
    every step: sequential (a rounded carry has no associative or chunked form); the full
    form scans `selective_scan_carry_quant_step`, so it equals the step form exactly.

    Returns:
      `y [b, l, d]` in `u.dtype` [, the final state `[b, d, n]` float32].
    """
    _check_selective(u, delta, A, B, C, D, z, delta_bias, initial_state)
    b, _, d = u.shape
    h0 = jnp.zeros((b, d, A.shape[1]), jnp.float32) if initial_state is None else initial_state
    step = lambda h, xs: selective_scan_carry_quant_step(
        h, xs[0], xs[1], A, xs[2], xs[3], D, z_t=xs[4], delta_bias=delta_bias,
        delta_softplus=delta_softplus, carry_fn=carry_fn,
    )  # fmt: skip
    final, y = _scan_time(step, _f32(h0), (u, delta, B, C, z))
    return (y, final) if return_final_state else y


def gla_carry_quant_step(S, q_t, k_t, v_t, g_t, *, scale=None, carry_fn: Fn | None = None):
    """One GLA token with `carry_fn` on the new state: `S = carry_fn(diag(exp(g)) S + k^T v)`,
    `o = scale * q S`; shapes as `lib.ops.linear_attention.gla_step` (`g_t: [b, h, dk]` or
    `[b, h]`). Returns `(S [b, h, dk, dv] float32, o_t [b, h, dv] in q_t.dtype)`."""
    scale = q_t.shape[-1] ** -0.5 if scale is None else scale
    g_t = _f32(g_t)
    decay = jnp.exp(g_t)[..., None] if g_t.ndim == 3 else jnp.exp(g_t)[..., None, None]
    S = decay * S + _f32(k_t)[..., None] * _f32(v_t)[..., None, :]
    S = (carry_fn or _identity)(S)
    return S, (scale * jnp.einsum("bhk,bhkv->bhv", _f32(q_t), S)).astype(q_t.dtype)


def gla_carry_quant(
    q, k, v, g, *, scale=None, carry_fn: Fn | None = None, initial_state=None,
    return_final_state=False,
):  # fmt: skip
    """`lib.ops.linear_attention.gla` (the recurrent form; RetNet with `g = log gamma` per
    head) with `carry_fn` on the state `[b, h, dk, dv]` after every step: a scan of
    `gla_carry_quant_step`. Returns `o [b, l, h, dv]` [, final state float32]."""
    _check_gla(q, k, v, g, initial_state, None)
    b, _, h, dk = q.shape
    S0 = jnp.zeros((b, h, dk, v.shape[-1]), jnp.float32) if initial_state is None else initial_state
    step = lambda S, xs: gla_carry_quant_step(S, *xs, scale=scale, carry_fn=carry_fn)
    final, o = _scan_time(step, _f32(S0), (q, k, v, g))
    return (o, final) if return_final_state else o


def rwkv6_carry_quant_step(S, r_t, k_t, v_t, g_t, u, *, carry_fn: Fn | None = None):
    """One RWKV-6 token with `carry_fn` on the new state: `o = r (S + diag(u) k^T v)` (from the
    previous, quantized state) then `S = carry_fn(diag(exp(g)) S + k^T v)`; shapes as
    `lib.ops.linear_attention.rwkv.rwkv6_step`. Returns `(S float32, o_t [b, h, dv] float32)`."""
    r_t, k_t, v_t, g_t = (_f32(x) for x in (r_t, k_t, v_t, g_t))
    kv = k_t[..., :, None] * v_t[..., None, :]
    o = jnp.einsum("bhk,bhkv->bhv", r_t, S + _f32(u)[..., None] * kv)
    return (carry_fn or _identity)(jnp.exp(g_t)[..., None] * S + kv), o


def rwkv6_carry_quant(
    r, k, v, g, u, *, carry_fn: Fn | None = None, initial_state=None, return_final_state=False
):
    """`lib.ops.linear_attention.rwkv.rwkv6` (its recurrent form) with `carry_fn` on the state
    `[b, h, dk, dv]` after every step: a scan of `rwkv6_carry_quant_step` (the bonus term reads
    the current token's `k^T v` in float; only the carried state is rounded).
    Returns `o [b, l, h, dv]` in `r.dtype` [, final state float32]."""
    _check_rwkv6(r, k, v, g, u, initial_state)
    b, _, h, dk = r.shape
    S0 = jnp.zeros((b, h, dk, v.shape[-1]), jnp.float32) if initial_state is None else initial_state
    step = lambda S, xs: rwkv6_carry_quant_step(S, *xs, u, carry_fn=carry_fn)
    final, o = _scan_time(step, _f32(S0), (r, k, v, g))
    o = o.astype(r.dtype)
    return (o, final) if return_final_state else o


# ------------------------------------------------------------------ LMU memory


def lmu_memory_carry_quant_step(m, u_t, a_bar, b_bar, *, carry_fn: Fn | None = None):
    """One step of the LMU's Legendre memory with `carry_fn` on the new memory:
    `m = carry_fn(m A_bar^T + u_t B_bar)`; `m: [b, d, N]`, `u_t: [b, d]`, `a_bar [N, N]`,
    `b_bar [N]` (see `lib.ops.ssm.lmu.lmu_discretize`). Returns `(m, m)` (float32 or wider)."""
    m = _f32(m)
    a, bb = jnp.asarray(a_bar, m.dtype), jnp.asarray(b_bar, m.dtype)
    m = jnp.einsum("bdm,nm->bdn", m, a) + u_t.astype(m.dtype)[..., None] * bb
    m = (carry_fn or _identity)(m)
    return m, m


def lmu_memory_carry_quant(
    u, a_bar, b_bar, *, carry_fn: Fn | None = None, initial_state=None, return_final_state=False
):
    """`lib.ops.ssm.lmu.lmu_memory` with `carry_fn` on the memory `[b, d, N]` after every step:
    sequential (a rounded memory is no longer LTI, so it has no convolution form); a scan of
    `lmu_memory_carry_quant_step`, so the full form equals the step form.

    Returns:
      `m: [b, l, d, N]` float32 (or wider) [, the final memory `[b, d, N]`].
    """
    check_rank("u", u, 3)
    check_rank("b_bar", b_bar, 1)
    n = b_bar.shape[0]
    check_shape("a_bar", a_bar, (n, n))
    b, _, d = u.shape
    dtype = jnp.promote_types(u.dtype, jnp.float32)
    m0 = jnp.zeros((b, d, n), dtype) if initial_state is None else initial_state
    check_shape("initial_state", m0, (b, d, n))
    step = lambda m, u_t: lmu_memory_carry_quant_step(m, u_t, a_bar, b_bar, carry_fn=carry_fn)
    final, m = _scan_time(step, m0.astype(dtype), u)
    return (m, final) if return_final_state else m
