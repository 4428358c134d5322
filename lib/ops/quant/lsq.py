"""Trainable quantizers: LSQ learned step size (Esser et al. 2020) and quantized backward passes.

- `lsq_quant(x, step, bits)`: fake quantization whose step size is learned; the step's gradient
  is `-x/s + round(x/s)` inside the range and `qmin`/`qmax` outside, scaled by
  `1 / sqrt(numel * qmax)` (the paper's gradient scale).
- `quantize_grad(x, ...)`: identity forward, the cotangent is quantized on the way back (per
  tensor, to int or an FP8 format), as in low-precision training of activations' gradients.
- `fake_quant_qbwd(x, ...)`: both at once: fake-quantized forward and quantized backward.
"""

import functools
import math

import jax
import jax.numpy as jnp

from lib.ops.quant.formats import fake_quant, fp_max_value, int_range, quantize_fp


def grad_scale(x, g):
    """Value `x`, gradient multiplied by `g`."""
    return jax.lax.stop_gradient(x - x * g) + x * g


def round_ste(x):
    """`round(x)` with an identity gradient."""
    return x + jax.lax.stop_gradient(jnp.round(x) - x)


def lsq_init_step(x, bits: int, *, signed: bool = True):
    """LSQ's initial step `2 * mean|x| / sqrt(qmax)`."""
    _, qmax = int_range(bits, signed=signed)
    return 2.0 * jnp.mean(jnp.abs(x)) / math.sqrt(qmax)


def lsq_quant(x, step, bits: int, *, signed: bool = True, gradient_scale=None):
    """LSQ fake quantization `round(clip(x / s, qmin, qmax)) * s` with a learnable step `s`.

    Args:
      x: float array (weights or activations).
      step: positive step size, scalar or broadcastable to `x` (per channel).
      bits: 2..16.
      signed: signed codes (weights, pre-activations) or unsigned (post-ReLU activations).
      gradient_scale: multiplier for the step's gradient; default `1/sqrt(n * qmax)` with `n`
        the number of elements sharing one step.

    Returns:
      array like `x`: gradient w.r.t. `x` is the clipped straight-through estimate, w.r.t.
      `step` LSQ's.
    """
    qmin, qmax = int_range(bits, signed=signed)
    if gradient_scale is None:
        per_step = max(1, x.size // max(1, jnp.size(step)))
        gradient_scale = 1.0 / math.sqrt(per_step * qmax)
    s = grad_scale(step, gradient_scale)
    v = round_ste(jnp.clip(x / s, qmin, qmax))
    return (v * s).astype(jnp.result_type(x))


def _quantize_tensor(g, bits, exponent_bits, mantissa_bits):
    """Per-tensor dynamic quantization of `g` (max |g| maps to the top of the range)."""
    amax = jnp.max(jnp.abs(g))
    if bits is not None:
        _, qmax = int_range(bits)
        scale = jnp.where(amax > 0, amax / qmax, 1.0)
        return fake_quant(g, bits, scale=scale, narrow_range=True)
    top = fp_max_value(exponent_bits, mantissa_bits)
    scale = jnp.where(amax > 0, amax / top, 1.0)
    return quantize_fp(g / scale, exponent_bits, mantissa_bits) * scale


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def quantize_grad(x, bits=None, exponent_bits=5, mantissa_bits=2):
    """Identity forward; the incoming gradient is quantized per tensor before it flows on.

    Args:
      x: any float array.
      bits: integer bits for the gradient (symmetric, narrow range), or None for FP.
      exponent_bits, mantissa_bits: FP format of the gradient when `bits` is None (E5M2, the
        usual FP8 gradient format), scaled so that max |g| lands on the format's max value.
    """
    return x


def _qg_fwd(x, bits, exponent_bits, mantissa_bits):
    return x, None


def _qg_bwd(bits, exponent_bits, mantissa_bits, _, g):
    return (_quantize_tensor(g, bits, exponent_bits, mantissa_bits).astype(g.dtype),)


quantize_grad.defvjp(_qg_fwd, _qg_bwd)


def fake_quant_qbwd(x, bits: int, *, scale, grad_bits=None, grad_format=(5, 2)):
    """Fake-quantized forward (int `bits`, straight-through) and quantized backward.

    Args:
      x: activations.
      bits, scale: forward integer format, as in `fake_quant`.
      grad_bits: integer bits for the backward pass, or None for the FP `grad_format`.
      grad_format: (exponent_bits, mantissa_bits) of the gradient when `grad_bits` is None.
    """
    y = fake_quant(x, bits, scale=scale)
    return quantize_grad(y, grad_bits, *grad_format)
