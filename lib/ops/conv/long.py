"""Causal long convolution by FFT (Hyena, Poli et al. 2023; FlashFFTConv, Fu et al. 2023).

`y_t = sum_{s=0}^{K-1} k_s * u_{t-s}`, per channel (depthwise), `k[0]` multiplying the current
input (the convolution layout of Hyena and FlashFFTConv; note `lib.ops.conv.causal.causal_conv1d` uses
the cross-correlation layout with `w[K-1]` on the current input).
Forms (`method=`):
- "ref": a `lax.scan` over the K taps, summing shifted products (the definition);
- "direct": `lax.conv_general_dilated`, one feature group per channel, O(L K);
- "fft": zero-pad to a power of two >= L + K - 1 (at most 2L when K <= L) so the circular
  convolution equals the linear one, `irfft(rfft(u) * rfft(k))`, O(L log L). This is
  FlashFFTConv's reference computation. It mixes every position, so inputs holding a NaN or
  inf take the direct form instead (`finite_or`), keeping outputs at t free of later inputs.
"auto" picks "fft" on the CPU (fastest there at every kernel size measured with
`benchmarks/mixer_cases/cells_conv.py`) and, on an accelerator, "direct" below
`FFT_MIN_KERNEL` taps.

Step form: a ring buffer of the last K inputs (`RingState(buf, pos)`), one O(K) dot per token.
The ring helpers are shared with `lib.ops.conv.fsmn` and `lib.ops.conv.tcn`.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from lib.ops._checks import (
    check_floats,
    check_method,
    check_rank,
    check_shape,
    finite_or,
    on_accelerator,
)

METHODS = ("auto", "ref", "direct", "fft")
FFT_MIN_KERNEL = 64


class RingState(NamedTuple):
    """Ring buffer of past inputs: `buf: [b, K, d]`, `pos: []` int32, the next slot to write.

    `buf[(pos - 1 - s) % K]` holds the input `s + 1` steps back; a time-ordered buffer
    (oldest first) with `pos = 0` is a valid state.
    """

    buf: jax.Array
    pos: jax.Array


def ring_init(batch_size: int, size: int, channels: int, dtype=jnp.float32) -> RingState:
    """An empty (all-zero) ring of `size` past inputs."""
    return RingState(jnp.zeros((batch_size, size, channels), dtype), jnp.zeros((), jnp.int32))


def ring_push(state: RingState, u_t: jax.Array) -> tuple[RingState, jax.Array]:
    """Write `u_t: [b, d]`; return the new ring and the window `[b, K, d]`, newest first."""
    size = state.buf.shape[1]
    buf = jax.lax.dynamic_update_index_in_dim(state.buf, u_t.astype(state.buf.dtype), state.pos, 1)
    newest_first = (state.pos - jnp.arange(size)) % size
    return RingState(buf, (state.pos + 1) % size), jnp.take(buf, newest_first, axis=1)


def ring_history(state: RingState) -> jax.Array:
    """The buffered inputs in time order (oldest first), `[b, K, d]`."""
    size = state.buf.shape[1]
    return jnp.take(state.buf, (state.pos + jnp.arange(size)) % size, axis=1)


def ring_from_sequence(u: jax.Array, size: int, history: jax.Array | None = None) -> RingState:
    """The ring after reading `u: [b, l, d]` (preceded by `history: [b, size, d]`)."""
    if history is not None:
        u = jnp.concatenate([history.astype(u.dtype), u], axis=1)
    if u.shape[1] < size:
        u = jnp.pad(u, ((0, 0), (size - u.shape[1], 0), (0, 0)))
    return RingState(u[:, u.shape[1] - size :], jnp.zeros((), jnp.int32))


def _ref(u, k):
    kk, length = k.shape[0], u.shape[1]
    up = jnp.pad(u, ((0, 0), (kk - 1, 0), (0, 0)))

    def tap(y, s):
        shifted = jax.lax.dynamic_slice_in_dim(up, kk - 1 - s, length, axis=1)
        return y + k[s] * shifted, None

    y, _ = jax.lax.scan(tap, jnp.zeros_like(u), jnp.arange(kk))
    return y


def _direct(u, k):
    d = u.shape[-1]
    rhs = jnp.flip(k, 0)[:, None, :]  # [K, 1, d]: cross-correlation with the flipped kernel
    return jax.lax.conv_general_dilated(
        u,
        rhs.astype(u.dtype),
        window_strides=(1,),
        padding=[(k.shape[0] - 1, 0)],
        dimension_numbers=("NWC", "WIO", "NWC"),
        feature_group_count=d,
        precision=jax.lax.Precision.HIGHEST,
    )


def _fft(u, k):
    length = u.shape[1]
    n = 1 << max(0, int(length + k.shape[0] - 2).bit_length())
    u_f = jnp.fft.rfft(u, n=n, axis=1)
    k_f = jnp.fft.rfft(k, n=n, axis=0)
    return jnp.fft.irfft(u_f * k_f[None], n=n, axis=1)[:, :length]


def resolve_method(method: str, kernel_size: int) -> str:
    """The concrete form `method` stands for with a kernel of `kernel_size` taps.

    On the CPU the FFT form is as fast as the tap sum from K = 2 and far faster than XLA's
    grouped convolution at every K measured (benchmarks/results/mixers_cpu.md); on an
    accelerator short kernels go to the (cuDNN) direct convolution.
    """
    check_method(method, METHODS)
    if method == "auto":
        if on_accelerator() and kernel_size < FFT_MIN_KERNEL:
            return "direct"
        return "fft"
    return method


def fft_conv(
    u: jax.Array,
    k: jax.Array,
    *,
    initial_state: RingState | None = None,
    return_final_state: bool = False,
    method: str = "auto",
):
    """Causal depthwise convolution of `u` with a long kernel `k`.

    Args:
      u: inputs `[b, l, d]`.
      k: kernel `[K, d]`, `k[0]` on the current input; K may exceed l.
      initial_state: a `RingState` with `K` past inputs (see `ring_init`); zeros when None.
      return_final_state: also return the `RingState` after the last input.
      method: "ref", "direct", "fft" or "auto" (see the module docstring).

    Returns:
      `y: [b, l, d]` in `u.dtype` (computed in float32 or wider), and the final state.
    """
    check_floats(u=u, k=k)
    check_rank("u", u, 3)
    check_rank("k", k, 2)
    if k.shape[1] != u.shape[2]:
        raise ValueError(f"`k` must have shape (K, {u.shape[2]}), got {k.shape}")
    if k.shape[0] < 1:
        raise ValueError(f"`k` must have at least one tap (K >= 1), got shape {k.shape}")
    kk = k.shape[0]
    check_method(method, METHODS)
    dtype = jnp.promote_types(u.dtype, jnp.float32)
    x = u.astype(dtype)
    hist = None
    if initial_state is not None:
        check_shape("initial_state.buf", initial_state.buf, (u.shape[0], kk, u.shape[2]))
        hist = ring_history(initial_state).astype(dtype)
        x = jnp.concatenate([hist, x], axis=1)
    k_eff = k if hist is not None else k[: u.shape[1]]  # later taps never reach an output
    method = resolve_method(method, k_eff.shape[0])
    k_eff = jnp.asarray(k_eff, dtype)
    if x.shape[1] == 0 or k_eff.shape[0] == 0:
        y = jnp.zeros(x.shape, dtype)
    elif method == "fft":  # the FFT mixes all positions: non-finite inputs take the direct form
        y = finite_or(lambda: _fft(x, k_eff), lambda: _direct(x, k_eff), x, k_eff)
    else:
        y = {"ref": _ref, "direct": _direct}[method](x, k_eff)
    if hist is not None:
        y = y[:, kk:]
    y = y.astype(u.dtype)
    if not return_final_state:
        return y
    return y, ring_from_sequence(u.astype(dtype), kk, hist)


def fft_conv_ref(u, k, **kwargs):
    """The definition of `fft_conv` (a `lax.scan` over kernel taps)."""
    return fft_conv(u, k, method="ref", **kwargs)


def fft_conv_init_state(batch_size: int, kernel_size: int, channels: int, dtype=jnp.float32):
    """Zero `RingState` for the step form."""
    return ring_init(batch_size, kernel_size, channels, dtype)


def fft_conv_step(state: RingState, u_t: jax.Array, k: jax.Array):
    """Streaming form: `(state, u_t: [b, d]) -> (state, y_t: [b, d])`, O(K) per token."""
    state, window = ring_push(state, u_t)
    y = jnp.einsum("bkd,kd->bd", window, k.astype(window.dtype))
    return state, y.astype(u_t.dtype)
