"""FSMN memory block (Zhang et al. 2015; DFSMN; the dilated FSMN of MossFormer2 and FRCRN).

A learnable finite-impulse-response memory over time, one filter per channel (vectorised FSMN):

    m_t = h_t (residual) + sum_{i=0}^{N1-1} a_i * h_{t - i*s} + sum_{j=1}^{N2} c_j * h_{t + j*s}

with look-back taps `left = a: [N1, d]` (`a_0` on the current frame), optional look-ahead taps
`right = c: [N2, d]` (bidirectional, not causal) and dilation (stride) `s`. MossFormer2 stacks
such blocks with growing dilation; FRCRN runs them along the frequency axis (then the "time"
axis here is frequency and the bidirectional form is the usual choice).

Forms (`method=`): "ref" (a `lax.scan` over taps) and "conv" (`lax.conv_general_dilated`), via
`lib.ops.conv.tcn.dilated_causal_conv`; the look-ahead part is the same causal conv run on the
time-reversed sequence. The causal form has a step form with a ring-buffer state; the
bidirectional form has none (it needs future frames).
"""

import jax
import jax.numpy as jnp

from lib.ops._checks import check_rank
from lib.ops.conv.long import RingState, ring_init
from lib.ops.conv.tcn import dilated_causal_conv, dilated_causal_conv_step, receptive_field


def fsmn(
    h: jax.Array,
    left: jax.Array,
    right: jax.Array | None = None,
    *,
    dilation: int = 1,
    residual: bool = True,
    initial_state: RingState | None = None,
    return_final_state: bool = False,
    method: str = "auto",
):
    """FSMN memory over axis 1.

    Args:
      h: hidden sequence `[b, l, d]`.
      left: look-back taps `[N1, d]`, `left[i]` on `h_{t - i*dilation}`.
      right: look-ahead taps `[N2, d]`, `right[j-1]` on `h_{t + j*dilation}`; None = causal.
      dilation: tap spacing (>= 1).
      residual: add `h` to the memory (the skip connection of DFSMN / MossFormer2).
      initial_state: `RingState` of past frames (causal form only; see `fsmn_init_state`).
      return_final_state: also return the final `RingState` (causal form only).
      method: "ref", "conv" or "auto".

    Returns:
      `m: [b, l, d]` in `h.dtype` (and the final state).
    """
    check_rank("h", h, 3)
    check_rank("left", left, 2)
    if right is not None:
        check_rank("right", right, 2)
        if right.shape[1] != h.shape[-1]:
            raise ValueError(f"`right` must have shape (N2, {h.shape[-1]}), got {right.shape}")
        if initial_state is not None or return_final_state:
            raise ValueError("`right` (look-ahead) taps make FSMN non-causal: no streaming state")
    m, state = dilated_causal_conv(
        h,
        left,
        dilation=dilation,
        initial_state=initial_state,
        return_final_state=True,
        method=method,
    )
    if right is not None:
        ahead = jnp.concatenate([jnp.zeros_like(right[:1]), right], axis=0)
        m = m + jnp.flip(
            dilated_causal_conv(jnp.flip(h, 1), ahead, dilation=dilation, method=method), 1
        )
    if residual:
        m = m + h
    return (m, state) if return_final_state else m


def fsmn_ref(h, left, right=None, **kwargs):
    """The definition of `fsmn` (a `lax.scan` over taps)."""
    return fsmn(h, left, right, method="ref", **kwargs)


def fsmn_init_state(
    batch_size: int, num_taps: int, channels: int, dilation: int = 1, dtype=jnp.float32
) -> RingState:
    """Zero ring of the last `(num_taps - 1) * dilation + 1` frames for `fsmn_step`."""
    return ring_init(batch_size, receptive_field(num_taps, dilation), channels, dtype)


def fsmn_step(
    state: RingState, h_t: jax.Array, left: jax.Array, *, dilation: int = 1, residual: bool = True
):
    """Streaming causal FSMN: `(state, h_t: [b, d]) -> (state, m_t: [b, d])`."""
    state, m = dilated_causal_conv_step(state, h_t, left, dilation=dilation)
    return state, (m + h_t if residual else m)
