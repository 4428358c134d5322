"""SELU, alpha-dropout and LeCun-normal init (Klambauer et al. 2017, Self-Normalizing Networks).

A SELU network keeps the activations of every layer near zero mean and unit variance when the
weights have zero mean and variance `1 / fan_in` (LeCun-normal). The constants `ALPHA` and
`LAMBDA` are the solution of the paper's fixed-point equations: for pre-activations
`z ~ N(0, 1)`, `E[selu(z)] = 0` and `E[selu(z)^2] = 1`. `selu_moments` gives the closed-form
moments of `selu(z)` for `z ~ N(mu, nu)` (the paper's mapping `g`), so the fixed point can be
checked exactly, without sampling.

Alpha-dropout sets dropped units to SELU's negative saturation value `-LAMBDA * ALPHA` instead of
zero, then applies an affine map `a * x + b` chosen so that a zero-mean / unit-variance input
stays zero-mean / unit-variance (the paper's eq. for `a` and `b`).
"""

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import erfc

# High-precision values from the paper's supplementary (alpha_01, lambda_01).
ALPHA = 1.6732632423543772848170429916717
LAMBDA = 1.0507009873554804934193349852946
# The value a dropped unit takes: SELU's limit for x -> -infinity.
ALPHA_PRIME = -LAMBDA * ALPHA


def selu(x: jax.Array, alpha: float = ALPHA, scale: float = LAMBDA) -> jax.Array:
    """Scaled exponential linear unit: `scale * (x if x > 0 else alpha * (exp(x) - 1))`.

    Args:
      x: any shape.
      alpha, scale: the paper's `alpha` and `lambda` (defaults give the (0, 1) fixed point).

    Returns:
      Array of `x`'s shape and dtype.
    """
    # expm1 on min(x, 0) keeps the unused branch finite (no inf * 0 in the gradient).
    neg = alpha * jnp.expm1(jnp.minimum(x, 0.0))
    return scale * jnp.where(x > 0, x, neg)


def selu_moments(mu, nu, alpha: float = ALPHA, scale: float = LAMBDA):
    """Closed-form mean and variance of `selu(z)` for `z ~ N(mu, nu)`.

    This is the paper's mapping `g: (mu, nu) -> (mu~, nu~)` for one unit whose summed input
    has mean `mu` and variance `nu` (i.e. `omega = 0, tau = 1` folded into `mu, nu`).

    Args:
      mu: mean of the pre-activation (scalar or array).
      nu: variance of the pre-activation, > 0.

    Returns:
      `(mean, variance)` of `selu(z)`, each of `mu`'s broadcast shape.
    """
    mu = jnp.asarray(mu, jnp.float64 if jax.config.jax_enable_x64 else jnp.float32)
    nu = jnp.asarray(nu, mu.dtype)
    s = jnp.sqrt(nu)
    r2 = math.sqrt(2.0)
    # Positive part: E[z 1{z>0}] and E[z^2 1{z>0}].
    p_pos = 0.5 * erfc(-mu / (r2 * s))
    pdf = jnp.exp(-(mu**2) / (2 * nu)) / math.sqrt(2 * math.pi)
    e_pos = mu * p_pos + s * pdf
    e2_pos = (mu**2 + nu) * p_pos + mu * s * pdf

    # Negative part: E[exp(k z) 1{z<=0}] = exp(k mu + k^2 nu / 2) * Phi(-(mu + k nu) / s).
    def e_exp(k):
        return jnp.exp(k * mu + 0.5 * k**2 * nu) * 0.5 * erfc((mu + k * nu) / (r2 * s))

    p_neg = 1.0 - p_pos
    e_neg = alpha * (e_exp(1.0) - p_neg)
    e2_neg = alpha**2 * (e_exp(2.0) - 2.0 * e_exp(1.0) + p_neg)
    mean = scale * (e_pos + e_neg)
    second = scale**2 * (e2_pos + e2_neg)
    return mean, second - mean**2


def alpha_dropout_affine(rate: float, alpha_prime: float = ALPHA_PRIME) -> tuple[float, float]:
    """The affine correction `(a, b)` of alpha-dropout for drop probability `rate`.

    With keep probability `q = 1 - rate`: `a = (q + alpha'^2 q (1 - q))^(-1/2)`,
    `b = -a (1 - q) alpha'`, so `a * (x d + alpha' (1 - d)) + b` has zero mean and unit
    variance when `x` does.
    """
    q = 1.0 - rate
    a = (q + alpha_prime**2 * q * (1.0 - q)) ** -0.5
    b = -a * (1.0 - q) * alpha_prime
    return a, b


def alpha_dropout(
    x: jax.Array,
    rate: float,
    rng: jax.Array | None = None,
    *,
    deterministic: bool = False,
    alpha_prime: float = ALPHA_PRIME,
) -> jax.Array:
    """Alpha-dropout: drop units to `alpha'`, then restore mean 0 / variance 1.

    Args:
      x: activations of any shape (SELU outputs).
      rate: drop probability in `[0, 1)`.
      rng: PRNG key; required unless `deterministic` or `rate == 0`.
      deterministic: if True (evaluation), return `x` unchanged.
      alpha_prime: value given to dropped units (SELU's saturation `-lambda * alpha`).

    Returns:
      Array of `x`'s shape and dtype.
    """
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"`rate` must be in [0, 1), got {rate}")
    if deterministic or rate == 0.0:
        return x
    if rng is None:
        raise ValueError("alpha_dropout needs `rng` when not deterministic and rate > 0")
    keep = jax.random.bernoulli(rng, 1.0 - rate, x.shape)
    a, b = alpha_dropout_affine(rate, alpha_prime)
    y = jnp.where(keep, x, jnp.asarray(alpha_prime, x.dtype))
    return (a * y + b).astype(x.dtype)


def lecun_normal(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
    """LeCun-normal weights: `N(0, 1 / fan_in)` with `fan_in = prod(shape[:-1])`.

    The paper's init (plain, not truncated, normal). Usable as a Flax `kernel_init`.

    Args:
      key: PRNG key.
      shape: weight shape, fan-in axes first and fan-out last (`[d_in, d_out]` for Dense).

    Returns:
      Array of `shape` and `dtype`.
    """
    if len(shape) < 2:
        raise ValueError(f"lecun_normal needs a weight shape of rank >= 2, got {tuple(shape)}")
    fan_in = math.prod(shape[:-1])
    return jax.random.normal(key, shape, dtype) * jnp.asarray(fan_in**-0.5, dtype)
