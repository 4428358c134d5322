"""Pallas kernel for leaky integrate-and-fire over time, with its surrogate-gradient backward.

Forward, per neuron (one program owns one batch row and `block_d` neurons, state in registers):

    u_t = beta * v_{t-1} + I_t          (membrane before the spike)
    s_t = H(u_t - threshold)            (Heaviside)
    v_t = u_t - threshold * s_t         (reset="subtract")   or   u_t * (1 - s_t)   ("zero")

The kernel writes the spikes and the pre-spike membrane `u` (the only residual the backward
needs). The backward kernel walks time in reverse with the membrane gradient in registers:

    du_t = ds_t * sg(u_t - thr) + dv_t * dv/du_t,     dI_t = du_t,     dv_{t-1} = beta * du_t

with `sg` the surrogate derivative and dv/du_t = 1 - thr * sg(.) for the subtract reset
(1 - s_t - u_t * sg(.) for the zero reset); `detach_reset` drops the reset's gradient terms.
The gradient for `beta` is reduced outside the kernel from `du_t * v_{t-1}`.

Reference: `lib.ops.spiking.lif`.
"""

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl

from lib.kernels._common import compiler_params
from lib.kernels.linear_recurrence import _pick_block


def _reset(u, s, threshold, reset):
    return u - threshold * s if reset == "subtract" else u * (1.0 - s)


def _lif_fwd_kernel(i_ref, beta_ref, v0_ref, s_ref, u_ref, *, length, threshold, reset):
    beta = beta_ref[...].astype(jnp.float32)

    def body(t, v):
        u = beta * v + i_ref[pl.ds(t, 1), :].astype(jnp.float32)
        s = (u >= threshold).astype(jnp.float32)  # H(u - thr) with H(0) = 1, as lib.ops.spiking.lif
        s = jnp.where(jnp.isnan(u), u, s)  # a NaN membrane spikes NaN, as lib.ops.spiking.spike
        s_ref[pl.ds(t, 1), :] = s.astype(s_ref.dtype)
        u_ref[pl.ds(t, 1), :] = u
        return _reset(u, s, threshold, reset)

    lax.fori_loop(0, length, body, v0_ref[...].astype(jnp.float32))


def _lif_bwd_kernel(
    u_ref, ds_ref, dvT_ref, beta_ref, di_ref, *, length, threshold, reset, detach, sg
):
    beta = beta_ref[...].astype(jnp.float32)

    def body(i, dv):
        t = length - 1 - i
        u = u_ref[pl.ds(t, 1), :]
        x = u - threshold
        g = sg(x)
        s = (x >= 0).astype(jnp.float32)
        if detach:
            dvdu = jnp.ones_like(u) if reset == "subtract" else 1.0 - s
        elif reset == "subtract":
            dvdu = 1.0 - threshold * g
        else:
            dvdu = 1.0 - s - u * g
        du = ds_ref[pl.ds(t, 1), :].astype(jnp.float32) * g + dv * dvdu
        di_ref[pl.ds(t, 1), :] = du
        return beta * du

    lax.fori_loop(0, length, body, dvT_ref[...].astype(jnp.float32))


def _specs(length, bd):
    seq = pl.BlockSpec((None, length, bd), lambda i, j: (i, 0, j))
    row = pl.BlockSpec((None, 1, bd), lambda i, j: (i, 0, j))
    chan = pl.BlockSpec((1, bd), lambda i, j: (0, j))
    return seq, row, chan


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4, 5, 6, 7, 8))
def _lif(current, beta, v0, threshold, reset, detach, sg, block_d, interpret):
    spikes, _, _ = _lif_forward(current, beta, v0, threshold, reset, block_d, interpret)
    return spikes


def _lif_forward(current, beta, v0, threshold, reset, block_d, interpret):
    bsz, length, d = current.shape
    bd = _pick_block(d, block_d)
    seq, row, chan = _specs(length, bd)
    spikes, u = pl.pallas_call(
        functools.partial(_lif_fwd_kernel, length=length, threshold=threshold, reset=reset),
        grid=(bsz, d // bd),
        in_specs=[seq, chan, row],
        out_specs=[seq, seq],
        out_shape=[
            jax.ShapeDtypeStruct((bsz, length, d), current.dtype),
            jax.ShapeDtypeStruct((bsz, length, d), jnp.float32),
        ],
        interpret=interpret,
        compiler_params=compiler_params(),
        name="lif_forward",
    )(current, beta[None, :], v0[:, None, :])
    return spikes, u, bd


def _lif_fwd(current, beta, v0, threshold, reset, detach, sg, block_d, interpret):
    spikes, u, _ = _lif_forward(current, beta, v0, threshold, reset, block_d, interpret)
    return spikes, (u, beta, v0)


def _lif_bwd(threshold, reset, detach, sg, block_d, interpret, res, dspikes):
    u, beta, v0 = res
    bsz, length, d = u.shape
    bd = _pick_block(d, block_d)
    seq, row, chan = _specs(length, bd)
    du = pl.pallas_call(
        functools.partial(
            _lif_bwd_kernel, length=length, threshold=threshold, reset=reset, detach=detach, sg=sg
        ),
        grid=(bsz, d // bd),
        in_specs=[seq, seq, row, chan],
        out_specs=seq,
        out_shape=jax.ShapeDtypeStruct((bsz, length, d), jnp.float32),
        interpret=interpret,
        compiler_params=compiler_params(),
        name="lif_backward",
    )(u, dspikes, jnp.zeros((bsz, 1, d), jnp.float32), beta[None, :])
    s = (u >= threshold).astype(jnp.float32)
    v = _reset(u, s, threshold, reset)
    v_prev = jnp.concatenate([v0[:, None, :].astype(jnp.float32), v[:, :-1]], axis=1)
    dbeta = jnp.sum(du * v_prev, axis=(0, 1)).astype(beta.dtype)
    dv0 = (beta.astype(jnp.float32) * du[:, 0]).astype(v0.dtype)
    return du.astype(dspikes.dtype), dbeta, dv0


_lif.defvjp(_lif_fwd, _lif_bwd)


def lif_pallas(
    current,
    *,
    beta,
    surrogate_grad: Callable,
    threshold: float = 1.0,
    reset: str = "subtract",
    v0=None,
    detach_reset: bool = False,
    block_d: int | None = None,
    interpret: bool | None = None,
):
    """Spikes of LIF neurons driven by `current` [batch, time, *neurons], via Pallas kernels.

    Args:
      current: input current I_t, [batch, time, *neurons], float32 or bfloat16.
      beta: membrane decay, a scalar or an array broadcastable to the neuron shape (learnable:
        it gets a gradient).
      surrogate_grad: elementwise derivative used for dH(x)/dx in the backward pass, e.g.
        `lambda x: 1 / (1 + 10 * abs(x)) ** 2` for the fast sigmoid of slope 10.
      threshold: firing threshold (a Python float).
      reset: "subtract" or "zero".
      v0: initial membrane [batch, *neurons]; zeros when None.
      detach_reset: drop the reset's contribution to the gradient.
      block_d, interpret: as in `linear_recurrence_pallas`.

    Returns:
      spikes [batch, time, *neurons] (0/1) in `current`'s dtype.
    """
    if reset not in ("subtract", "zero"):
        raise ValueError(f"reset must be 'subtract' or 'zero', got {reset!r}")
    bsz, length = current.shape[:2]
    feat = current.shape[2:]
    d = 1
    for s in feat:
        d *= s
    beta = jnp.broadcast_to(jnp.asarray(beta, jnp.float32), feat).reshape(d)
    v0 = jnp.zeros((bsz, d), jnp.float32) if v0 is None else jnp.reshape(v0, (bsz, d))
    if interpret is None:
        interpret = jax.default_backend() not in ("gpu", "cuda", "rocm", "tpu")
    spikes = _lif(
        current.reshape(bsz, length, d),
        beta,
        v0.astype(jnp.float32),
        float(threshold),
        reset,
        bool(detach_reset),
        surrogate_grad,
        block_d,
        bool(interpret),
    )
    return spikes.reshape(current.shape)
