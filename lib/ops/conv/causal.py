"""Causal depthwise 1-D convolution with a streaming state (the short conv of H3, Mamba, Griffin).

`y_t = bias + sum_{j=0}^{K-1} w_{K-1-j} * x_{t-j}`, per channel: tap `w[K-1]` multiplies the
current input and `w[0]` the oldest (the layout of `lax.conv` with left padding K-1, and of
Mamba's `causal_conv1d`). The state is the last K-1 inputs, oldest first.

Forms (`method=`): "shift" (the reference: a sum of K shifted products, also what handles
resets), "conv" (`lax.conv_general_dilated` with one feature group per channel).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from lib.ops._checks import check_floats, check_method, check_rank, check_shape, on_accelerator

METHODS = ("auto", "shift", "conv")
# Short convs: K fused multiply-adds beat the grouped conv (30x on XLA:CPU at K=4; see
# benchmarks/results/mixers_cpu.md), and on the CPU the grouped conv loses at any K we use.
_AUTO_SHIFT_MAX_K = 4


class ConvState(NamedTuple):
    """Step-form state: the last K-1 inputs, `x` [batch, K-1, channels], oldest first."""

    x: jax.Array


def _check(x, weight, bias, initial_state):
    check_floats(x=x, weight=weight, bias=bias, initial_state=initial_state)
    check_rank("x", x, 3)
    check_rank("weight", weight, 2)
    if weight.shape[0] < 1:
        raise ValueError(f"`weight` must have at least one tap (K >= 1), got shape {weight.shape}")
    if weight.shape[1] != x.shape[2]:
        raise ValueError(f"`weight` must have shape (K, {x.shape[2]}), got {weight.shape}")
    if bias is not None:
        check_shape("bias", bias, (x.shape[2],))
    if initial_state is not None:
        check_shape("initial_state", initial_state, (x.shape[0], weight.shape[0] - 1, x.shape[2]))


def _shift(xp, weight, length, cut):
    """xp [B, K-1+L, D] padded inputs; cut [B, L] new-segment flags or None."""
    k = weight.shape[0]
    y = jnp.zeros(xp.shape[:1] + (length,) + xp.shape[2:], jnp.float32)
    keep = None
    for j in range(k):  # j = how many steps back this tap looks
        xs = xp[:, k - 1 - j : k - 1 - j + length].astype(jnp.float32)
        if cut is not None and j > 0:
            # x_{t-j} is visible only if no segment starts in (t-j, t].
            starts = cut[:, k - 1 - j + 1 : k - 1 - j + 1 + length]
            keep = ~starts if keep is None else keep & ~starts
            xs = jnp.where(keep[..., None], xs, 0)
        y = y + xs * weight[k - 1 - j].astype(jnp.float32)
    return y


def _conv(xp, weight):
    k, d = weight.shape
    rhs = weight.astype(xp.dtype)[:, None, :]  # [K, 1, D]: spatial, in/group, out
    return lax.conv_general_dilated(
        xp,
        rhs,
        window_strides=(1,),
        padding="VALID",
        dimension_numbers=("NWC", "WIO", "NWC"),
        feature_group_count=d,
        preferred_element_type=jnp.float32,
    )


def resolve_method(method: str, kernel_size: int, *, segments: bool = False) -> str:
    """The concrete form `method` stands for (the grouped conv knows no segment boundaries)."""
    check_method(method, METHODS)
    if segments:
        return "shift"
    if method == "auto":
        return "shift" if kernel_size <= _AUTO_SHIFT_MAX_K or not on_accelerator() else "conv"
    return method


def causal_conv1d(
    x,
    weight,
    bias=None,
    *,
    initial_state=None,
    return_final_state: bool = False,
    segment_ids=None,
    activation: str | None = None,
    method: str = "auto",
):
    """Depthwise causal convolution over axis 1.

    Args:
      x: inputs [B, L, D].
      weight: taps [K, D]; `weight[K-1]` multiplies the current step.
      bias: optional [D].
      initial_state: the K-1 inputs before `x[:, 0]`, [B, K-1, D] (zeros when None).
      return_final_state: also return the last K-1 inputs, [B, K-1, D] (the step state).
      segment_ids: optional [B, L] ints; taps never reach across a change of id (packed
        batches). Position 0 starts a segment, so `initial_state` is then unused.
      activation: None or "silu", applied after the bias.
      method: "auto", "shift" (reference) or "conv".

    Returns:
      y [B, L, D] in x's dtype, and the final `ConvState.x` when asked.
    """
    _check(x, weight, bias, initial_state)
    if activation not in (None, "silu"):
        raise ValueError(f"unknown activation={activation!r}; expected None or 'silu'")
    bsz, length, d = x.shape
    k = weight.shape[0]
    if initial_state is None:
        initial_state = jnp.zeros((bsz, k - 1, d), x.dtype)
    xp = jnp.concatenate([initial_state.astype(x.dtype), x], axis=1)
    cut = None
    if segment_ids is not None:
        check_shape("segment_ids", segment_ids, (bsz, length))
        first = jnp.ones((bsz, 1), bool)
        starts = jnp.concatenate([first, segment_ids[:, 1:] != segment_ids[:, :-1]], axis=1)
        # Index like xp: K-1 state slots (no starts) then the L positions.
        cut = jnp.concatenate([jnp.zeros((bsz, k - 1), bool), starts], axis=1)
    method = resolve_method(method, k, segments=cut is not None)
    y = _shift(xp, weight, length, cut) if method == "shift" else _conv(xp, weight)
    if bias is not None:
        y = y + bias.astype(jnp.float32)
    if activation == "silu":
        y = jax.nn.silu(y)
    y = y.astype(x.dtype)
    if return_final_state:
        return y, xp[:, xp.shape[1] - (k - 1) :]
    return y


def causal_conv1d_ref(x, weight, bias=None, **kwargs):
    """The reference form: `causal_conv1d(..., method="shift")`."""
    return causal_conv1d(x, weight, bias, method="shift", **kwargs)


def causal_conv1d_init_state(batch_size: int, kernel_size: int, channels: int, dtype=jnp.float32):
    """Zero step state: `ConvState(x=zeros[B, K-1, D])`."""
    return ConvState(x=jnp.zeros((batch_size, kernel_size - 1, channels), dtype))


def causal_conv1d_step(state: ConvState, x_t, weight, bias=None, *, activation=None):
    """One streaming step: returns `(new_state, y_t)`.

    Args:
      state: `ConvState` with the last K-1 inputs [B, K-1, D].
      x_t: this step's input [B, D].
      weight, bias, activation: as in `causal_conv1d`.
    """
    check_floats(x_t=x_t, weight=weight, bias=bias)
    window = jnp.concatenate([state.x, x_t[:, None].astype(state.x.dtype)], axis=1)  # [B, K, D]
    y = jnp.einsum("bkd,kd->bd", window.astype(jnp.float32), weight.astype(jnp.float32))
    if bias is not None:
        y = y + bias.astype(jnp.float32)
    if activation == "silu":
        y = jax.nn.silu(y)
    return ConvState(x=window[:, 1:]), y.astype(x_t.dtype)
