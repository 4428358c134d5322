"""MEGA's multi-dimensional damped EMA (Ma et al. 2023), the linear recurrence TCNCA replaces.

Per channel `d` and EMA dimension `n` (`N` of them), with `alpha, delta` in (0, 1):

    h_t[d, n] = q[d, n] * h_{t-1}[d, n] + alpha[d, n] * beta[d, n] * x_t[d]
    y_t[d]    = sum_n eta[d, n] * h_t[d, n] / sqrt(N)
    q         = 1 - alpha * delta      (the damped decay)

Unrolled, `y = k * x` is a causal depthwise convolution with the kernel

    k[t, d] = sum_n eta[d, n] alpha[d, n] beta[d, n] q[d, n]^t / sqrt(N),

which MEGA computes for the whole length and applies by FFT, O(L log L). `q^t` is taken in
log space (`exp(t * log q)`, `log q = log1p(-alpha * delta)`), so it decays to zero without
overflow or NaN on long sequences.

Forms: `ema_ref` (the recurrence, a `lax.scan` over time: the definition), `ema` (the kernel
and `lib.ops.conv.long.fft_conv`, MEGA's parallel form) and `ema_step` (one token).
Parameters are unconstrained: `alpha = sigmoid(alpha_logit)`, `delta = sigmoid(delta_logit)`.
Shapes: `x: [b, l, D]`; every parameter `[D, N]`; the state `h: [b, D, N]`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lib.ops._checks import check_method, check_rank, check_shape
from lib.ops.conv.long import fft_conv

METHODS = ("fft", "ref")


def _check(x, alpha_logit, delta_logit, beta, eta):
    check_rank("x", x, 3)
    shape = (x.shape[-1], None)
    for name, p in (("alpha_logit", alpha_logit), ("delta_logit", delta_logit)):
        check_shape(name, p, shape)
    check_shape("beta", beta, alpha_logit.shape)
    check_shape("eta", eta, alpha_logit.shape)
    check_shape("delta_logit", delta_logit, alpha_logit.shape)


def ema_coefficients(alpha_logit, delta_logit, beta, eta):
    """The recurrence's coefficients from the raw parameters (all `[D, N]`).

    Returns:
      `(log_q, b_in, c_out)`: `log q` (<= 0), the input weight `alpha * beta` and the
      output weight `eta / sqrt(N)`, each `[D, N]` float32.
    """
    f32 = jnp.float32
    alpha = jax.nn.sigmoid(alpha_logit.astype(f32))
    delta = jax.nn.sigmoid(delta_logit.astype(f32))
    log_q = jnp.log1p(-alpha * delta)
    return log_q, alpha * beta.astype(f32), eta.astype(f32) * alpha.shape[-1] ** -0.5


def ema_kernel(alpha_logit, delta_logit, beta, eta, length: int):
    """The convolution kernel `k: [length, D]` of the EMA (module docstring), float32."""
    log_q, b_in, c_out = ema_coefficients(alpha_logit, delta_logit, beta, eta)
    t = jnp.arange(length, dtype=jnp.float32)[:, None, None]
    return jnp.einsum("tdn,dn->td", jnp.exp(t * log_q[None]), b_in * c_out)


def ema_ref(x, alpha_logit, delta_logit, beta, eta, *, initial_state=None):
    """The EMA by its recurrence (a `lax.scan` over time).

    Args:
      x: `[b, l, D]`.
      alpha_logit, delta_logit, beta, eta: `[D, N]` (module docstring).
      initial_state: `h_0: [b, D, N]` (zeros when None).
    Returns:
      `(y: [b, l, D] in x.dtype, h_L: [b, D, N] float32)`.
    """
    _check(x, alpha_logit, delta_logit, beta, eta)
    log_q, b_in, c_out = ema_coefficients(alpha_logit, delta_logit, beta, eta)
    q = jnp.exp(log_q)
    h0 = ema_init_state(x.shape[0], *alpha_logit.shape) if initial_state is None else initial_state
    check_shape("initial_state", h0, (x.shape[0],) + alpha_logit.shape)

    def step(h, x_t):  # h: [b, D, N], x_t: [b, D]
        h = q * h + b_in * x_t[..., None]
        return h, jnp.einsum("bdn,dn->bd", h, c_out)

    xs = jnp.swapaxes(x.astype(jnp.float32), 0, 1)
    h, ys = jax.lax.scan(step, h0.astype(jnp.float32), xs)
    return jnp.swapaxes(ys, 0, 1).astype(x.dtype), h


def ema(x, alpha_logit, delta_logit, beta, eta, *, method: str = "fft"):
    """The EMA over whole sequences from a zero state: `y = ema_kernel(...) * x`.

    Args:
      x: `[b, l, D]`.
      alpha_logit, delta_logit, beta, eta: `[D, N]`.
      method: "fft" (the kernel, then `fft_conv`: MEGA's form, O(L log L)) or "ref" (the scan).
    Returns:
      `y: [b, l, D]` in `x.dtype`.
    """
    check_method(method, METHODS)
    _check(x, alpha_logit, delta_logit, beta, eta)
    if method == "ref":
        return ema_ref(x, alpha_logit, delta_logit, beta, eta)[0]
    k = ema_kernel(alpha_logit, delta_logit, beta, eta, x.shape[1])
    return fft_conv(x, k, method="fft")


def ema_init_state(batch_size: int, channels: int, ndim: int):
    """Zero EMA state `h: [b, D, N]` float32."""
    return jnp.zeros((batch_size, channels, ndim), jnp.float32)


def ema_step(h, x_t, alpha_logit, delta_logit, beta, eta):
    """One token: `(h: [b, D, N], x_t: [b, D]) -> (h, y_t: [b, D])`."""
    log_q, b_in, c_out = ema_coefficients(alpha_logit, delta_logit, beta, eta)
    h = jnp.exp(log_q) * h + b_in * x_t.astype(jnp.float32)[..., None]
    return h, jnp.einsum("bdn,dn->bd", h, c_out).astype(x_t.dtype)
