"""Dilated causal convolutions and the TCN stack (Bai et al. 2018; TCNCA, paper 8).

`dilated_causal_conv(x, w, dilation)`: `y_t = sum_{j=0}^{K-1} x_{t - j*dilation} @ w[j]`, with
`w: [K, c_in, c_out]` (a full conv) or `w: [K, c]` (depthwise); `w[0]` multiplies the current
input, as in `lib.ops.conv.long`. Forms (`method=`): "ref" (a `lax.scan` over taps of
shifted products, the definition) and "conv" (`lax.conv_general_dilated` with `rhs_dilation`).
"auto" picks "conv" on an accelerator. On the CPU (idle 2-core machine, 15 reps;
benchmarks/mixer_cases/cells_conv.py "fsmn" and "tcn" rows) it picks "ref" for depthwise
kernels at every length, since XLA's grouped convolution is slow there (FSMN, 16 taps: 1.6 vs
3.1 ms at 256 steps, 15.1 vs 15.8 at 2048, 33 vs 29 at 4096; 3 taps at 4096 steps, loaded machine: 20 vs 164 ms
at dilation 2, 7 vs 58 at dilation 128), and for full convs picks by length: the tap scan wins
below 384 steps (0.67 vs 0.69 ms at 128, 1.14 vs 1.29 at 256, then 1.74 vs 1.23 at 512).

`tcn` stacks such layers with dilations `1, 2, 4, ...` (receptive field
`1 + (K-1)(2^n - 1)`): `x <- x + act(conv_l(x) + b_l)` (residual) or `x <- act(...)`.
Step forms keep a ring buffer (`lib.ops.conv.long.RingState`) of the last `(K-1)*dilation + 1`
inputs per layer.
"""

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp

from lib.ops._checks import (
    check_floats,
    check_method,
    check_positive_int,
    check_rank,
    on_accelerator,
)
from lib.ops.conv.long import RingState, ring_from_sequence, ring_history, ring_init, ring_push

METHODS = ("auto", "ref", "conv")


def receptive_field(kernel_size: int, dilation: int) -> int:
    """Inputs one dilated conv output sees: `(K-1)*dilation + 1` (also its ring-buffer size)."""
    return (kernel_size - 1) * dilation + 1


def _apply_taps(w, taps_x):
    """Apply one tap `w` (depthwise `[c]` or full `[c_in, c_out]`) to the shifted input."""
    return taps_x * w if w.ndim == 1 else taps_x @ w


def _ref(x, w, dilation):
    k, length = w.shape[0], x.shape[1]
    pad = (k - 1) * dilation
    xp = jnp.pad(x, ((0, 0), (pad, 0), (0, 0)))
    out_ch = w.shape[-1]

    def tap(y, j):
        shifted = jax.lax.dynamic_slice_in_dim(xp, pad - j * dilation, length, axis=1)
        return y + _apply_taps(w[j], shifted), None

    y0 = jnp.zeros(x.shape[:2] + (out_ch,), x.dtype)
    y, _ = jax.lax.scan(tap, y0, jnp.arange(k))
    return y


def _conv(x, w, dilation):
    depthwise = w.ndim == 2
    rhs = jnp.flip(w, 0)
    rhs = rhs[:, None, :] if depthwise else rhs
    return jax.lax.conv_general_dilated(
        x,
        rhs.astype(x.dtype),
        window_strides=(1,),
        padding=[((w.shape[0] - 1) * dilation, 0)],
        rhs_dilation=(dilation,),
        dimension_numbers=("NWC", "WIO", "NWC"),
        feature_group_count=x.shape[-1] if depthwise else 1,
        precision=jax.lax.Precision.HIGHEST,
    )


CPU_FULL_REF_BELOW = 384  # full convs: length below which "ref" wins on a CPU


def resolve_method(method: str, *, depthwise: bool, length: int) -> str:
    """The concrete form `method` stands for at sequence `length` (see the module docstring)."""
    check_method(method, METHODS)
    if method == "auto":
        if on_accelerator():
            return "conv"
        return "ref" if depthwise or length < CPU_FULL_REF_BELOW else "conv"
    return method


def dilated_causal_conv(
    x: jax.Array,
    w: jax.Array,
    *,
    dilation: int = 1,
    initial_state: RingState | None = None,
    return_final_state: bool = False,
    method: str = "auto",
):
    """Causal dilated convolution over axis 1.

    Args:
      x: inputs `[b, l, c_in]`.
      w: taps `[K, c_in, c_out]`, or `[K, c_in]` for a depthwise conv; `w[0]` on `x_t`.
      dilation: spacing of the taps (>= 1).
      initial_state: `RingState` of the last `receptive_field(K, dilation)` inputs.
      return_final_state: also return the `RingState` after the last input.
      method: "ref", "conv" or "auto".

    Returns:
      `y: [b, l, c_out]` in `x.dtype` (and the final state).
    """
    check_method(method, METHODS)
    check_floats(x=x, w=w)
    check_rank("x", x, 3)
    check_rank("w", w, (2, 3))
    if w.shape[1] != x.shape[-1]:
        raise ValueError(f"`w` must have shape (K, {x.shape[-1]}, ...), got {w.shape}")
    if w.shape[0] < 1:
        raise ValueError(f"`w` must have at least one tap (K >= 1), got shape {w.shape}")
    dilation = check_positive_int("dilation", dilation)
    size = receptive_field(w.shape[0], dilation)
    dtype = jnp.promote_types(x.dtype, jnp.float32)
    xs = x.astype(dtype)
    hist = None
    if initial_state is not None:
        want = (x.shape[0], size, x.shape[-1])
        if initial_state.buf.shape != want:
            raise ValueError(
                f"`initial_state` buffer must have shape {want}, got {initial_state.buf.shape}"
            )
        hist = ring_history(initial_state).astype(dtype)
        xs = jnp.concatenate([hist, xs], axis=1)
    form = resolve_method(method, depthwise=w.ndim == 2, length=xs.shape[1])
    fn = _ref if form == "ref" else _conv
    y = fn(xs, jnp.asarray(w, dtype), dilation)  # (NumPy taps cannot be indexed by a tracer)
    if hist is not None:
        y = y[:, size:]
    y = y.astype(x.dtype)
    if not return_final_state:
        return y
    return y, ring_from_sequence(x.astype(dtype), size, hist)


def dilated_causal_conv_step(state: RingState, x_t: jax.Array, w: jax.Array, *, dilation: int = 1):
    """Streaming form: `(state, x_t: [b, c_in]) -> (state, y_t: [b, c_out])`."""
    state, window = ring_push(state, x_t)  # newest first
    taps = window[:, ::dilation]  # [b, K, c_in]: x_t, x_{t-d}, ...
    w = w.astype(taps.dtype)
    y = jnp.einsum("bkc,kc->bc", taps, w) if w.ndim == 2 else jnp.einsum("bkc,kco->bo", taps, w)
    return state, y.astype(x_t.dtype)


def _layers(kernels, biases, dilations):
    n = len(kernels)
    dilations = tuple(2**i for i in range(n)) if dilations is None else tuple(dilations)
    if len(dilations) != n:
        raise ValueError(f"`dilations` must have {n} entries (one per kernel), got {dilations}")
    if biases is not None and len(biases) != n:
        raise ValueError(f"`biases` must have {n} entries (one per kernel), got {len(biases)}")
    return dilations


def tcn(
    x: jax.Array,
    kernels: Sequence[jax.Array],
    biases: Sequence[jax.Array] | None = None,
    *,
    dilations: Sequence[int] | None = None,
    activation: Callable = jax.nn.relu,
    residual: bool = True,
    initial_state: tuple[RingState, ...] | None = None,
    return_final_state: bool = False,
    method: str = "auto",
):
    """A stack of dilated causal conv layers: `x <- x + act(conv_l(x) + b_l)`.

    Args:
      x: inputs `[b, l, d]`.
      kernels: per layer `[K, d, d]` (or `[K, d]` depthwise); a stacked `[n, K, d, d]` works.
      biases: per layer `[d]`, or None.
      dilations: per layer; default `1, 2, 4, ...`.
      activation: the nonlinearity after each conv.
      residual: add each layer's input to its output.
      initial_state: tuple of per-layer `RingState`s (see `tcn_init_state`).
      return_final_state: also return the tuple of final per-layer states.
      method: "ref", "conv" or "auto" (as `dilated_causal_conv`).

    Returns:
      `y: [b, l, d]` (and the final state).
    """
    check_rank("x", x, 3)
    dilations = _layers(kernels, biases, dilations)
    if initial_state is not None and len(initial_state) != len(kernels):
        raise ValueError(f"`initial_state` must hold {len(kernels)} ring states")
    finals = []
    for i, (w, dil) in enumerate(zip(kernels, dilations)):
        s0 = None if initial_state is None else initial_state[i]
        y, s = dilated_causal_conv(
            x, w, dilation=dil, initial_state=s0, return_final_state=True, method=method
        )
        if biases is not None:
            y = y + biases[i].astype(y.dtype)
        y = activation(y)
        x = x + y if residual else y
        finals.append(s)
    return (x, tuple(finals)) if return_final_state else x


def tcn_init_state(batch_size, kernel_size, channels, dilations, dtype=jnp.float32):
    """Zero per-layer ring states for `tcn_step` (`dilations`: one per layer)."""
    return tuple(
        ring_init(batch_size, receptive_field(kernel_size, d), channels, dtype) for d in dilations
    )


def tcn_step(
    state, x_t, kernels, biases=None, *, dilations=None, activation=jax.nn.relu, residual=True
):
    """Streaming TCN: `(states, x_t: [b, d]) -> (states, y_t: [b, d])`."""
    dilations = _layers(kernels, biases, dilations)
    new = []
    for i, (w, dil) in enumerate(zip(kernels, dilations)):
        s, y = dilated_causal_conv_step(state[i], x_t, w, dilation=dil)
        if biases is not None:
            y = y + biases[i].astype(y.dtype)
        y = activation(y)
        x_t = x_t + y if residual else y
        new.append(s)
    return tuple(new), x_t
