"""Diagonal linear recurrence h_t = a_t * h_{t-1} + b_t (Blelloch 1990; Martin & Cundy 2018).

The workhorse behind S4D/S5/LRU/RG-LRU, Mamba's selective scan, minGRU and LIF neurons.
Forms, chosen with `method=`:

- "scan": `lax.scan` over time, the reference (`linear_recurrence_ref`);
- "associative": `lax.associative_scan` over time with the operator
  `(a1, b1) . (a2, b2) = (a1 a2, a2 b1 + b2)`; O(log L) depth;
- "chunked": a sequential scan inside chunks of `chunk_size` steps (vectorised over chunks),
  an associative scan across the chunk summaries, then one fused correction;
- "pallas": the Pallas kernel in `lib.kernels.linear_recurrence` on a GPU/TPU (real inputs);
  elsewhere it falls back to the parallel form.

All forms share one `custom_vjp`: the backward pass is the same recurrence run in reverse,
`g_t = dh_t + a_{t+1} g_{t+1}`, `db_t = g_t`, `da_t = g_t h_{t-1}`, `dh0 = a_0 g_0`
(transposes, not conjugates, as JAX's vjp convention for complex numbers requires), so
gradients cost one more scan of the same kind rather than autodiff through the tree.
Low-precision inputs (bfloat16, float16) are carried in float32 and cast back.

A decay of exactly zero forgets the state by selection (`h_t = b_t`), never by multiplying, in
every form: segment resets are zero decays, so a NaN or inf in one packed sequence never
reaches the next one. Length-0 sequences give empty outputs and `h0` as the final state.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from lib.ops._checks import (
    check_chunk_size,
    check_floats,
    check_method,
    check_rank,
    on_accelerator,
)

METHODS = ("auto", "scan", "associative", "chunked", "pallas")
# From benchmarks/mixers_cpu.py (forward+backward, 2-core CPU, interleaved repetitions; see
# benchmarks/results/mixers_cpu.md): on XLA:CPU the sequential loop ties or beats the parallel
# forms for real inputs up to the lengths measured (2048), and beats them 2-4x for complex
# inputs, so "auto" is the loop there. On accelerators the parallel forms win.
_AUTO_ACCEL = "chunked"


class RecurrenceState(NamedTuple):
    """Step-form state of `linear_recurrence`: `h` [batch, *features]."""

    h: jax.Array


def _upcast(x):
    if x.dtype in (jnp.bfloat16, jnp.float16):
        return x.astype(jnp.float32)
    return x


def _combine(left, right):
    a1, b1 = left
    a2, b2 = right
    cut = a2 == 0  # a zero decay drops what came before, even a non-finite state
    return jnp.where(cut, 0, a1 * a2), jnp.where(cut, b2, a2 * b1 + b2)


def _step(a_t, h, b_t):
    """`a_t * h + b_t`, with `a_t == 0` selecting `b_t` (so h = inf or NaN does not leak)."""
    return jnp.where(a_t == 0, b_t, a_t * h + b_t)


def _scan_fwd(a, b, h0):
    """h over axis 1 by lax.scan; a, b [B, L, ...], h0 [B, ...]."""

    def step(h, ab):
        a_t, b_t = ab
        h = _step(a_t, h, b_t)
        return h, h

    _, h = lax.scan(step, h0, (jnp.moveaxis(a, 1, 0), jnp.moveaxis(b, 1, 0)))
    return jnp.moveaxis(h, 0, 1)


def _associative_fwd(a, b, h0):
    b = b.at[:, 0].set(_step(a[:, 0], h0, b[:, 0]))
    _, h = lax.associative_scan(_combine, (a, b), axis=1)
    return h


def _chunked_fwd(a, b, h0, chunk_size):
    bsz, length = b.shape[:2]
    feat = b.shape[2:]
    t = max(1, min(chunk_size, length))
    n = -(-length // t)
    pad = n * t - length
    if pad:
        widths = [(0, 0), (0, pad)] + [(0, 0)] * len(feat)
        a = jnp.pad(a, widths, constant_values=1)
        b = jnp.pad(b, widths)
    a_c = a.reshape(bsz, n, t, *feat)
    b_c = b.reshape(bsz, n, t, *feat)
    b_c = b_c.at[:, 0, 0].set(_step(a_c[:, 0, 0], h0, b_c[:, 0, 0]))

    # Inside each chunk (all chunks at once): local state from zero and cumulative decay.
    def step(carry, ab):
        acc_a, acc_h = carry
        a_t, b_t = ab
        acc_a = jnp.where(a_t == 0, 0, acc_a * a_t)
        acc_h = _step(a_t, acc_h, b_t)
        return (acc_a, acc_h), (acc_a, acc_h)

    init = (jnp.ones_like(a_c[:, :, 0]), jnp.zeros_like(b_c[:, :, 0]))
    _, (cum_a, loc_h) = lax.scan(step, init, (jnp.moveaxis(a_c, 2, 0), jnp.moveaxis(b_c, 2, 0)))
    cum_a = jnp.moveaxis(cum_a, 0, 2)  # [B, n, t, ...]
    loc_h = jnp.moveaxis(loc_h, 0, 2)
    # Across chunks: the state entering chunk c is the associative scan of chunk summaries.
    _, carry = lax.associative_scan(_combine, (cum_a[:, :, -1], loc_h[:, :, -1]), axis=1)
    carry_in = jnp.concatenate([jnp.zeros_like(carry[:, :1]), carry[:, :-1]], axis=1)
    h = _step(cum_a, carry_in[:, :, None], loc_h)
    return h.reshape(bsz, n * t, *feat)[:, :length]


def _pallas_fwd(a, b, h0):
    from lib.kernels.linear_recurrence import linear_recurrence_pallas

    return linear_recurrence_pallas(a, b, h0)


def _forward(a, b, h0, method, chunk_size):
    if method == "scan":
        return _scan_fwd(a, b, h0)
    if method == "associative":
        return _associative_fwd(a, b, h0)
    if method == "chunked":
        return _chunked_fwd(a, b, h0, chunk_size)
    if method == "pallas":
        return _pallas_fwd(a, b, h0)
    raise AssertionError(method)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def _recurrence(a, b, h0, method, chunk_size):
    return _forward(a, b, h0, method, chunk_size)


def _recurrence_fwd(a, b, h0, method, chunk_size):
    h = _forward(a, b, h0, method, chunk_size)
    return h, (a, h, h0)


def _recurrence_bwd(method, chunk_size, res, dh):
    a, h, h0 = res
    # g_t = dh_t + a_{t+1} g_{t+1}: a forward recurrence on the time-reversed sequence.
    a_next = jnp.concatenate([a[:, 1:], jnp.zeros_like(a[:, :1])], axis=1)
    g_rev = _forward(jnp.flip(a_next, 1), jnp.flip(dh, 1), jnp.zeros_like(h0), method, chunk_size)
    g = jnp.flip(g_rev, 1)
    h_prev = jnp.concatenate([h0[:, None], h[:, :-1]], axis=1)
    da = g * h_prev
    dh0 = a[:, 0] * g[:, 0]
    return da, g, dh0


_recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)


def resolve_method(method: str, length: int, *, complex_input: bool = False) -> str:
    """The concrete form `method` stands for at sequence `length` on this backend."""
    check_method(method, METHODS)
    accel = on_accelerator()
    if method == "auto":
        method = _AUTO_ACCEL if accel else "scan"
    if method == "pallas" and (not accel or complex_input):
        method = "chunked"
    return method


def segment_cut(segment_ids=None, reset=None, *, length: int, reverse: bool = False):
    """Boolean [B, L]: True where h_t must not see the previous state (in scan direction).

    `segment_ids` [B, L] ints mark which sequence each position belongs to; `reset` [B, L]
    bools mark the first position of each new sequence (in forward time). Returns None when
    neither is given.
    """
    if segment_ids is not None and reset is not None:
        raise ValueError("pass either `segment_ids` or `reset`, not both")
    if segment_ids is not None:
        check_rank("segment_ids", segment_ids, 2)
        first = jnp.ones_like(segment_ids[:, :1], dtype=bool)
        reset = jnp.concatenate([first, segment_ids[:, 1:] != segment_ids[:, :-1]], axis=1)
    if reset is None:
        return None
    check_rank("reset", reset, 2)
    if reset.shape[1] != length:
        raise ValueError(f"`reset`/`segment_ids` must have length {length}, got {reset.shape}")
    reset = reset.astype(bool)
    if not reverse:
        return reset
    # Going backwards, h_t is cut from h_{t+1} when t+1 starts a new sequence.
    return jnp.concatenate([reset[:, 1:], jnp.zeros_like(reset[:, :1])], axis=1)


def linear_recurrence(
    a,
    b,
    h0=None,
    *,
    reverse: bool = False,
    method: str = "auto",
    segment_ids=None,
    reset=None,
    return_final_state: bool = False,
    chunk_size: int = 64,
):
    """h_t = a_t * h_{t-1} + b_t over axis 1, elementwise (real or complex).

    Args:
      a: decays, [B, L, *F] or anything broadcastable to `b`'s shape.
      b: inputs, [B, L, *F].
      h0: initial state [B, *F] (zeros when None). With `reverse=True` it is the state after
        the last step (`h_{L}`), and the recurrence is `h_t = a_t h_{t+1} + b_t`.
      reverse: scan from the last position to the first.
      method: "auto", "scan" (reference), "associative", "chunked" or "pallas" (see module).
      segment_ids: optional [B, L] ints; the state does not pass between positions with
        different ids (packed mixed-length batches). Every segment starts from zero, so with
        `segment_ids` the first step ignores `h0` (with `reset`, only where reset is True).
      reset: optional [B, L] bools, True at the first position of each segment (alternative
        to `segment_ids`).
      return_final_state: also return the state after the last step (first, when reversed).
      chunk_size: chunk length for method="chunked".

    Returns:
      h [B, L, *F] in the result dtype of (a, b); and the final state [B, *F] if asked.
    """
    check_rank("b", b, range(2, 10))
    check_floats(complex_ok=True, a=a, b=b, h0=h0)
    chunk_size = check_chunk_size(chunk_size)
    if jnp.ndim(a) > jnp.ndim(b):
        raise ValueError(f"`a` {jnp.shape(a)} must broadcast to `b` {jnp.shape(b)}")
    try:
        jnp.broadcast_shapes(jnp.shape(a), jnp.shape(b))
    except ValueError:
        raise ValueError(f"`a` {jnp.shape(a)} must broadcast to `b` {jnp.shape(b)}") from None
    out_dtype = jnp.result_type(a, b)
    length = b.shape[1]
    if h0 is not None and tuple(h0.shape) != (b.shape[0], *b.shape[2:]):
        raise ValueError(f"`h0` must have shape {(b.shape[0], *b.shape[2:])}, got {h0.shape}")
    complex_input = jnp.issubdtype(out_dtype, jnp.complexfloating)
    method = resolve_method(method, length, complex_input=complex_input)
    work = _upcast(jnp.zeros((), out_dtype)).dtype
    a = jnp.broadcast_to(a, b.shape).astype(work)
    b = jnp.asarray(b, work)
    h0 = jnp.zeros((b.shape[0], *b.shape[2:]), work) if h0 is None else h0.astype(work)
    cut = segment_cut(segment_ids, reset, length=length, reverse=reverse)
    if length == 0:
        h = jnp.zeros(b.shape, out_dtype)
        return (h, h0.astype(out_dtype)) if return_final_state else h
    if cut is not None:
        a = jnp.where(cut.reshape(cut.shape + (1,) * (b.ndim - 2)), 0, a)
    if reverse:
        a, b = jnp.flip(a, 1), jnp.flip(b, 1)
    h = _recurrence(a, b, h0, method, int(chunk_size))
    if reverse:
        h = jnp.flip(h, 1)
    final = h[:, 0] if reverse else h[:, -1]
    h = h.astype(out_dtype)
    if return_final_state:
        return h, final.astype(out_dtype)
    return h


def linear_recurrence_ref(
    a, b, h0=None, *, reverse=False, segment_ids=None, reset=None, return_final_state=False
):
    """The reference form: `linear_recurrence(..., method="scan")`."""
    return linear_recurrence(
        a,
        b,
        h0,
        reverse=reverse,
        method="scan",
        segment_ids=segment_ids,
        reset=reset,
        return_final_state=return_final_state,
    )


def linear_recurrence_init_state(batch_size: int, features, dtype=jnp.float32):
    """Zero step-form state for `linear_recurrence_step`."""
    features = (features,) if isinstance(features, int) else tuple(features)
    return RecurrenceState(h=jnp.zeros((batch_size, *features), dtype))


def linear_recurrence_step(state: RecurrenceState, a_t, b_t, reset_t=None):
    """One step of the recurrence: returns `(new_state, h_t)`.

    Args:
      state: `RecurrenceState` with `h` [B, *F].
      a_t, b_t: this step's decay and input, [B, *F] (a_t broadcastable).
      reset_t: optional [B] bools; True drops the previous state (a new sequence starts).
    """
    check_floats(complex_ok=True, a_t=a_t, b_t=b_t)
    h_prev = state.h
    if reset_t is not None:
        a_t = jnp.where(reset_t.reshape((-1,) + (1,) * (h_prev.ndim - 1)), 0, a_t)
    h = _step(a_t, h_prev, b_t).astype(state.h.dtype)
    return RecurrenceState(h=h), h
