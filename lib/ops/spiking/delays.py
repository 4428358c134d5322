"""Synaptic delays: fixed per-synapse delays and DCLS learnable delays (Hammouamri, Khalfaoui-Hassani & Masquelier 2023).

A layer with per-synapse delays is a causal 1-D convolution across time,

    y[b, t, o] = sum_tau sum_i K[tau, i, o] x[b, t - tau, i],     tau = 0 .. D,

whose kernel `K` [D+1, I, O] places each weight W[i, o] at its delay. Fixed integer delays give
a one-hot kernel (`fixed_delay_kernel`). DCLS ("dilated convolution with learnable spacings")
spreads each weight over the taps with a Gaussian centred on a continuous, learnable position
P[i, o] (`dcls_kernel`), so the loss has a gradient with respect to P; sigma narrows during
training (`dcls_sigma`) and, for inference, positions are rounded to integers
(`dcls_rounded_kernel`), which turns the layer back into a fixed-delay layer.

Shape letters: B batch, L time, I inputs, O outputs, D maximum delay (taps = D + 1).
"""

import math

import jax.numpy as jnp
from jax import lax

from lib.ops._checks import check_rank, check_shape


def delay_shift(x_BxLxN, delays_N):
    """Delay each channel by an integer number of steps: `y[:, t, n] = x[:, t - d_n, n]`.

    Zeros are shifted in at the start. `delays_N` are non-negative ints [N]. Returns [B, L, N].
    """
    check_rank("x_BxLxN", x_BxLxN, 3)
    check_shape("delays_N", delays_N, (x_BxLxN.shape[2],))
    length = x_BxLxN.shape[1]
    src_LxN = jnp.arange(length)[:, None] - jnp.asarray(delays_N)[None, :]
    gathered = jnp.take_along_axis(x_BxLxN, jnp.clip(src_LxN, 0, length - 1)[None], axis=1)
    return jnp.where((src_LxN >= 0)[None], gathered, 0).astype(x_BxLxN.dtype)


def fixed_delay_kernel(weights_IxO, delays_IxO, max_delay: int):
    """One-hot delay kernel K [D+1, I, O] with W[i, o] at tap delays[i, o] (ints in [0, D])."""
    check_shape("delays_IxO", delays_IxO, weights_IxO.shape)
    taps = jnp.arange(max_delay + 1)[:, None, None]
    return jnp.where(taps == jnp.asarray(delays_IxO)[None], weights_IxO[None], 0)


def dcls_kernel(weights_IxO, positions_IxO, max_delay: int, sigma):
    """DCLS kernel K [D+1, I, O]: W[i, o] spread over the taps by a normalised Gaussian.

    Args:
      weights_IxO: synaptic weights W.
      positions_IxO: continuous delays P (learnable; kept in [0, D] by clipping here).
      max_delay: D, the largest delay; the kernel has D + 1 taps.
      sigma: Gaussian width in steps (scalar); narrowed during training by `dcls_sigma`.

    Returns:
      K with `K[:, i, o].sum() == W[i, o]` and its mass centred at P[i, o].
    """
    check_shape("positions_IxO", positions_IxO, weights_IxO.shape)
    p = jnp.clip(positions_IxO, 0.0, float(max_delay))
    taps = jnp.arange(max_delay + 1, dtype=p.dtype)[:, None, None]
    g = jnp.exp(-0.5 * ((taps - p[None]) / sigma) ** 2)
    g = g / (jnp.sum(g, axis=0, keepdims=True) + 1e-7)
    return g * weights_IxO[None]


def dcls_rounded_kernel(weights_IxO, positions_IxO, max_delay: int):
    """Inference kernel: positions rounded to the nearest integer delay (one-hot taps)."""
    delays = jnp.clip(jnp.round(positions_IxO), 0, max_delay).astype(jnp.int32)
    return fixed_delay_kernel(weights_IxO, delays, max_delay)


def dcls_sigma(step, total_steps: int, sigma_init: float, sigma_final: float = 0.5):
    """Narrowing schedule: sigma decays exponentially from `sigma_init` (e.g. D / 2) to
    `sigma_final` over `total_steps`, then stays there."""
    frac = jnp.clip(jnp.asarray(step, jnp.float32) / max(total_steps, 1), 0.0, 1.0)
    return sigma_init * jnp.exp(frac * math.log(sigma_final / sigma_init))


def delayed_dense(x_BxLxI, kernel_DxIxO):
    """Causal delayed dense layer: `y[b, t, o] = sum_tau sum_i K[tau, i, o] x[b, t - tau, i]`.

    Args:
      x_BxLxI: input spikes or currents.
      kernel_DxIxO: delay kernel from `fixed_delay_kernel`, `dcls_kernel` or
        `dcls_rounded_kernel` (D here is the number of taps, max_delay + 1).

    Returns:
      y [B, L, O] in the promoted dtype of x and K.
    """
    check_rank("x_BxLxI", x_BxLxI, 3)
    check_rank("kernel_DxIxO", kernel_DxIxO, 3)
    if x_BxLxI.shape[2] != kernel_DxIxO.shape[1]:
        raise ValueError(
            f"x has {x_BxLxI.shape[2]} inputs but the kernel expects {kernel_DxIxO.shape[1]}"
        )
    taps = kernel_DxIxO.shape[0]
    dtype = jnp.result_type(x_BxLxI, kernel_DxIxO)
    # conv_general_dilated cross-correlates: y[t] = sum_k x[t + k - (taps-1)] rhs[k], so the
    # kernel is flipped in time to read x[t - tau] with K[tau].
    return lax.conv_general_dilated(
        x_BxLxI.astype(dtype),
        jnp.flip(kernel_DxIxO, 0).astype(dtype),
        window_strides=(1,),
        padding=[(taps - 1, 0)],
        dimension_numbers=("NWC", "WIO", "NWC"),
    )


def delay_buffer_init(batch_size: int, taps: int, inputs: int, dtype=jnp.float32):
    """Zero state of `delayed_dense_step`: the last `taps` inputs, newest first, [B, D+1, I]."""
    return jnp.zeros((batch_size, taps, inputs), dtype)


def delayed_dense_step(buffer_BxDxI, x_t_BxI, kernel_DxIxO):
    """Streaming form of `delayed_dense`: `(buffer, x_t) -> (buffer, y_t [B, O])`."""
    buffer = jnp.concatenate([x_t_BxI[:, None].astype(buffer_BxDxI.dtype), buffer_BxDxI[:, :-1]], 1)
    return buffer, jnp.einsum("bdi,dio->bo", buffer, kernel_DxIxO)
