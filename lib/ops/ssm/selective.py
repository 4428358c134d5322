"""Mamba's selective scan (Gu & Dao 2023, "Mamba: Linear-Time Sequence Modeling with Selective
State Spaces", Algorithm 2 / S6), channels-last.

    dt_t = softplus(delta_t + delta_bias)   (bias and softplus optional)
    h_t  = exp(dt_t A) * h_{t-1} + (dt_t u_t) B_t        h: [b, d, n]
    y_t  = C_t . h_t + D u_t,   then y_t *= silu(z_t) when z is given

Forms (`method=`):
- "scan": `lax.scan` over time carrying h [b, d, n]; the reference (`selective_scan_ref`);
- "associative": materialises exp(dt A) and dt u B as [b, l, d, n] and runs
  `linear_recurrence(method="associative")`: fastest on accelerators, memory O(b l d n);
- "chunked": a `lax.scan` over chunks of `chunk_size` steps, each chunk an associative scan
  from the carried state, rematerialised in the backward pass (`jax.checkpoint`), so memory
  is O(b T d n) for the state expansion instead of O(b l d n);
- "pallas": `lib.kernels.selective_scan` on a GPU/TPU; falls back to "chunked" elsewhere.
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
    on_accelerator,
)
from lib.ops.scan.linear import linear_recurrence, segment_cut

METHODS = ("auto", "scan", "associative", "chunked", "pallas")


class SelectiveScanState(NamedTuple):
    """Step-form state: `h` [batch, d, n], float32."""

    h: jax.Array


def _check(u, delta, A, B, C, D, z, delta_bias, initial_state):
    check_floats(
        u=u, delta=delta, A=A, B=B, C=C, D=D, z=z, delta_bias=delta_bias,
        initial_state=initial_state,
    )  # fmt: skip
    check_rank("u", u, 3)
    b, length, d = u.shape
    check_shape("delta", delta, u.shape)
    check_rank("A", A, 2)
    check_shape("A", A, (d, None))
    n = A.shape[1]
    check_shape("B", B, (b, length, n))
    check_shape("C", C, (b, length, n))
    if D is not None:
        check_shape("D", D, (d,))
    if z is not None:
        check_shape("z", z, u.shape)
    if delta_bias is not None:
        check_shape("delta_bias", delta_bias, (d,))
    if initial_state is not None:
        check_shape("initial_state", initial_state, (b, d, n))


def discretize_delta(delta, delta_bias=None, delta_softplus=False):
    """dt = softplus(delta + bias) in float32 (bias and softplus optional)."""
    dt = delta.astype(jnp.float32)
    if delta_bias is not None:
        dt = dt + delta_bias.astype(jnp.float32)
    if delta_softplus:
        dt = jax.nn.softplus(dt)
    return dt


def _scan_form(u, dt, A, B, C, h0, cut):
    """Reference: one step per position. All float32; returns y [b, l, d], h_L [b, d, n]."""

    def step(h, xs):
        u_t, dt_t, B_t, C_t, cut_t = xs
        dA = jnp.exp(dt_t[..., None] * A)
        x = (dt_t * u_t)[..., None] * B_t[:, None, :]
        h = jnp.where(cut_t[:, None, None], x, dA * h + x)  # a reset selects, never multiplies
        return h, jnp.einsum("bdn,bn->bd", h, C_t)

    xs = tuple(jnp.moveaxis(v, 1, 0) for v in (u, dt, B, C, cut))
    h_last, y = lax.scan(step, h0, xs)
    return jnp.moveaxis(y, 0, 1), h_last


def _associative_form(u, dt, A, B, C, h0, cut):
    dA = jnp.exp(dt[..., None] * A)  # [b, l, d, n]
    dBu = (dt * u)[..., None] * B[:, :, None, :]
    h, h_last = linear_recurrence(
        dA, dBu, h0, method="associative", reset=cut, return_final_state=True
    )
    return jnp.einsum("bldn,bln->bld", h, C), h_last


def _chunked_form(u, dt, A, B, C, h0, cut, chunk_size):
    b, length, d = u.shape
    t = max(1, min(chunk_size, length))
    nc = -(-length // t)
    pad = nc * t - length
    if pad:  # dt = 0 on the padding: exp(0) = 1 and no input, so the state passes unchanged.
        u, dt, B, C, cut = (
            jnp.pad(v, [(0, 0), (0, pad)] + [(0, 0)] * (v.ndim - 2)) for v in (u, dt, B, C, cut)
        )

    def to_chunks(v):
        return jnp.moveaxis(v.reshape(b, nc, t, *v.shape[2:]), 1, 0)

    @jax.checkpoint
    def body(h, xs):
        y, h = _associative_form(*xs[:2], A, *xs[2:4], h, xs[4])
        return h, y

    h_last, y = lax.scan(body, h0, tuple(to_chunks(v) for v in (u, dt, B, C, cut)))
    return jnp.moveaxis(y, 0, 1).reshape(b, nc * t, d)[:, :length], h_last


def resolve_method(method: str, length: int) -> str:
    """The concrete form `method` stands for at `length` on this backend."""
    check_method(method, METHODS)
    accel = on_accelerator()
    if method == "auto":
        # CPU timings (benchmarks/mixers_cpu.py): the sequential scan is fastest there.
        return "pallas" if accel else "scan"
    if method == "pallas" and not accel:
        return "chunked"
    return method


def selective_scan(
    u,
    delta,
    A,
    B,
    C,
    D=None,
    *,
    z=None,
    delta_bias=None,
    delta_softplus: bool = False,
    initial_state=None,
    return_final_state: bool = False,
    segment_ids=None,
    method: str = "auto",
    chunk_size: int = 64,
):
    """Mamba's selective scan (see the module docstring for the maths and the forms).

    Args:
      u: inputs [b, l, d].
      delta: step sizes before bias/softplus, [b, l, d].
      A: state matrix (diagonal per channel, negative for stability), [d, n].
      B, C: input/output projections per position, [b, l, n].
      D: optional skip [d].
      z: optional gate [b, l, d]; the output is multiplied by silu(z).
      delta_bias: optional [d], added to delta before the softplus.
      delta_softplus: apply softplus to delta (+ bias).
      initial_state: state before the first step [b, d, n] (zeros when None).
      return_final_state: also return the state after the last step [b, d, n] (float32).
      segment_ids: optional [b, l] ints for packed batches; the state restarts from zero at
        every change of id (and at position 0, ignoring `initial_state`).
      method: "auto", "scan", "associative", "chunked" or "pallas".
      chunk_size: steps per chunk for method="chunked".

    Returns:
      y [b, l, d] in u's dtype; and the final state when asked.
    """
    _check(u, delta, A, B, C, D, z, delta_bias, initial_state)
    chunk_size = check_chunk_size(chunk_size)
    method = resolve_method(method, u.shape[1])
    bsz, length, d = u.shape
    if segment_ids is not None:
        check_shape("segment_ids", segment_ids, (bsz, length))
    if length == 0:  # empty outputs; the final state is the initial one
        h0 = jnp.zeros((bsz, d, A.shape[1]), jnp.float32)
        h0 = h0 if initial_state is None else initial_state.astype(jnp.float32)
        y = jnp.zeros(u.shape, u.dtype)
        return (y, h0) if return_final_state else y
    if method == "pallas" and segment_ids is None:
        from lib.kernels.selective_scan import selective_scan_pallas

        return selective_scan_pallas(
            u, delta, A, B, C, D, z=z, delta_bias=delta_bias, delta_softplus=delta_softplus,
            initial_state=initial_state, return_final_state=return_final_state,
        )  # fmt: skip
    if method == "pallas":
        method = "chunked"
    dt = discretize_delta(delta, delta_bias, delta_softplus)
    f32 = lambda v: v.astype(jnp.float32)
    u32, A32, B32, C32 = f32(u), f32(A), f32(B), f32(C)
    n = A.shape[1]
    h0 = jnp.zeros((bsz, d, n), jnp.float32) if initial_state is None else f32(initial_state)
    cut = segment_cut(segment_ids, None, length=length)
    cut = jnp.zeros((bsz, length), bool) if cut is None else cut
    if method == "scan":
        y, h_last = _scan_form(u32, dt, A32, B32, C32, h0, cut)
    elif method == "associative":
        y, h_last = _associative_form(u32, dt, A32, B32, C32, h0, cut)
    else:
        y, h_last = _chunked_form(u32, dt, A32, B32, C32, h0, cut, chunk_size)
    if D is not None:
        y = y + u32 * f32(D)
    if z is not None:
        y = y * jax.nn.silu(f32(z))
    y = y.astype(u.dtype)
    return (y, h_last) if return_final_state else y


def selective_scan_ref(u, delta, A, B, C, D=None, **kwargs):
    """The reference form: `selective_scan(..., method="scan")`."""
    return selective_scan(u, delta, A, B, C, D, method="scan", **kwargs)


def selective_scan_init_state(batch_size: int, d: int, n: int) -> SelectiveScanState:
    """Zero step state, h [batch, d, n] float32."""
    return SelectiveScanState(h=jnp.zeros((batch_size, d, n), jnp.float32))


def selective_scan_step(
    state: SelectiveScanState,
    u_t,
    delta_t,
    A,
    B_t,
    C_t,
    D=None,
    *,
    z_t=None,
    delta_bias=None,
    delta_softplus: bool = False,
):
    """One streaming step: returns `(new_state, y_t)`.

    Args:
      state: `SelectiveScanState` with h [b, d, n].
      u_t, delta_t, z_t: [b, d];  B_t, C_t: [b, n];  A, D, delta_bias as in `selective_scan`.
    """
    check_floats(u_t=u_t, delta_t=delta_t, A=A, B_t=B_t, C_t=C_t, D=D, z_t=z_t)
    dt = discretize_delta(delta_t, delta_bias, delta_softplus)
    u32 = u_t.astype(jnp.float32)
    dA = jnp.exp(dt[..., None] * A.astype(jnp.float32))
    h = dA * state.h + (dt * u32)[..., None] * B_t.astype(jnp.float32)[:, None, :]
    y = jnp.einsum("bdn,bn->bd", h, C_t.astype(jnp.float32))
    if D is not None:
        y = y + u32 * D.astype(jnp.float32)
    if z_t is not None:
        y = y * jax.nn.silu(z_t.astype(jnp.float32))
    return SelectiveScanState(h=h), y.astype(u_t.dtype)
