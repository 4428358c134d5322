"""Surrogate derivatives of the Heaviside step (Neftci, Mostafa & Zenke 2019, and the papers named below).

Each `Surrogate` holds `grad(x, **params)`, the derivative used in the backward pass, and
`smooth(x, **params)`, its smooth twin: `grad` is exactly `d smooth / dx`, which is what the
tests check. `x` is membrane minus threshold; `alpha` (or `omega`, `sigma`) sets the sharpness.

| name                  | smooth twin                                   | paper / library        |
|-----------------------|-----------------------------------------------|------------------------|
| straight_through      | x                                             | Bengio et al. 2013     |
| fast_sigmoid          | x / (1 + alpha |x|)          (grad peak 1)    | SuperSpike, Zenke 2018 |
| sigmoid               | sigmoid(alpha x)                              | Wu et al. 2018 (STBP)  |
| arctan                | 1/2 + arctan(pi/2 alpha x) / pi               | Fang et al. 2021       |
| triangle              | gamma * (integral of max(0, 1 - alpha |x|))   | Esser 2016; Bellec 2018|
| rectangular           | clip(alpha x + 1/2, 0, 1)                     | Wu et al. 2018 (STBP)  |
| gaussian              | Phi(alpha x)   (standard normal CDF)          | Wu et al. 2018 (STBP)  |
| piecewise_quadratic   | 0, 1/2 + alpha x - sign(x) (alpha x)^2/2, 1   | SpikingJelly           |
| piecewise_exponential | exp(alpha x)/2 (x<0), 1 - exp(-alpha x)/2     | SpikingJelly           |
| erf                   | (1 + erf(alpha x)) / 2                        | SpikingJelly           |
| soft_sign             | (1 + alpha x / (1 + alpha |x|)) / 2           | SpikingJelly           |
| multi_gaussian        | (1+h) Phi(x/s) - h Phi((x-s)/(k s)) - h Phi((x+s)/(k s)) | Yin et al. 2021 |
| biper_sine            | (1 + sin(omega x)) / 2  (periodic)            | BiPer, Vargas 2024     |

`biper_sine` is periodic: its gradient `omega/2 cos(omega x)` is the derivative of BiPer's
sine used for binarisation (forward `sign(sin(omega x))`); with the Heaviside forward it
agrees with the step near 0 (|x| < pi / (2 omega)).
"""

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import erf


class Surrogate(NamedTuple):
    """A registered surrogate: `grad` = d`smooth`/dx; `defaults` names every parameter."""

    grad: Callable
    smooth: Callable
    defaults: dict


SURROGATES: dict[str, Surrogate] = {}


def register_surrogate(name: str, grad: Callable, smooth: Callable | None = None, **defaults):
    """Add a surrogate `name` usable as `spike(x, name, **params)`.

    Args:
      name: registry key.
      grad: `grad(x, **params)` -> elementwise surrogate derivative (float32 in, float32 out).
      smooth: its antiderivative (the smooth twin), used by tests; None if unknown.
      **defaults: every parameter `grad` takes, with its default value.

    Returns:
      the registered `Surrogate`.
    """
    if name in SURROGATES:
        raise ValueError(f"surrogate {name!r} is already registered")
    SURROGATES[name] = Surrogate(grad, smooth, dict(defaults))
    return SURROGATES[name]


def get_surrogate(name: str) -> Surrogate:
    """Return the registered `Surrogate` called `name` (clear error when unknown)."""
    if name not in SURROGATES:
        raise ValueError(f"unknown surrogate {name!r}; registered: {sorted(SURROGATES)}")
    return SURROGATES[name]


_SQRT2 = math.sqrt(2.0)
_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _normal_pdf(x):
    return _INV_SQRT2PI * jnp.exp(-0.5 * x * x)


def _normal_cdf(x):
    return 0.5 * (1.0 + erf(x / _SQRT2))


register_surrogate(
    "straight_through",
    grad=lambda x: jnp.ones_like(x),
    smooth=lambda x: x,
)
register_surrogate(
    "fast_sigmoid",
    grad=lambda x, alpha: 1.0 / (1.0 + alpha * jnp.abs(x)) ** 2,
    smooth=lambda x, alpha: x / (1.0 + alpha * jnp.abs(x)),
    alpha=25.0,
)
register_surrogate(
    "sigmoid",
    grad=lambda x, alpha: alpha * jax.nn.sigmoid(alpha * x) * jax.nn.sigmoid(-alpha * x),
    smooth=lambda x, alpha: jax.nn.sigmoid(alpha * x),
    alpha=4.0,
)
register_surrogate(
    "arctan",
    grad=lambda x, alpha: 0.5 * alpha / (1.0 + (0.5 * math.pi * alpha * x) ** 2),
    smooth=lambda x, alpha: 0.5 + jnp.arctan(0.5 * math.pi * alpha * x) / math.pi,
    alpha=2.0,
)


def _triangle_smooth(x, alpha, gamma):
    z = jnp.clip(alpha * x, -1.0, 1.0)
    return gamma / alpha * (z - jnp.sign(z) * z * z / 2)


register_surrogate(
    "triangle",
    grad=lambda x, alpha, gamma: gamma * jnp.maximum(0.0, 1.0 - alpha * jnp.abs(x)),
    smooth=_triangle_smooth,
    alpha=1.0,
    gamma=0.3,
)
register_surrogate(
    "rectangular",
    grad=lambda x, alpha: alpha * (jnp.abs(x) < 0.5 / alpha).astype(x.dtype),
    smooth=lambda x, alpha: jnp.clip(alpha * x + 0.5, 0.0, 1.0),
    alpha=1.0,
)
register_surrogate(
    "gaussian",
    grad=lambda x, alpha: alpha * _normal_pdf(alpha * x),
    smooth=lambda x, alpha: _normal_cdf(alpha * x),
    alpha=2.0,
)


def _pq_smooth(x, alpha):
    z = jnp.clip(alpha * x, -1.0, 1.0)
    return 0.5 + z - jnp.sign(z) * z * z / 2


register_surrogate(
    "piecewise_quadratic",
    grad=lambda x, alpha: alpha * jnp.maximum(0.0, 1.0 - alpha * jnp.abs(x)),
    smooth=_pq_smooth,
    alpha=1.0,
)
register_surrogate(
    "piecewise_exponential",
    grad=lambda x, alpha: 0.5 * alpha * jnp.exp(-alpha * jnp.abs(x)),
    smooth=lambda x, alpha: jnp.where(
        x < 0,
        0.5 * jnp.exp(alpha * jnp.minimum(x, 0.0)),
        1 - 0.5 * jnp.exp(-alpha * jnp.maximum(x, 0.0)),
    ),
    alpha=2.0,
)
register_surrogate(
    "erf",
    grad=lambda x, alpha: alpha / math.sqrt(math.pi) * jnp.exp(-((alpha * x) ** 2)),
    smooth=lambda x, alpha: 0.5 * (1.0 + erf(alpha * x)),
    alpha=2.0,
)
register_surrogate(
    "soft_sign",
    grad=lambda x, alpha: 0.5 * alpha / (1.0 + alpha * jnp.abs(x)) ** 2,
    smooth=lambda x, alpha: 0.5 * (1.0 + alpha * x / (1.0 + alpha * jnp.abs(x))),
    alpha=2.0,
)


def _multi_gaussian_grad(x, sigma, height, scale):
    wide = scale * sigma
    return (
        (1.0 + height) * _normal_pdf(x / sigma) / sigma
        - height * _normal_pdf((x - sigma) / wide) / wide
        - height * _normal_pdf((x + sigma) / wide) / wide
    )


def _multi_gaussian_smooth(x, sigma, height, scale):
    wide = scale * sigma
    return (
        (1.0 + height) * _normal_cdf(x / sigma)
        - height * _normal_cdf((x - sigma) / wide)
        - height * _normal_cdf((x + sigma) / wide)
    )


register_surrogate(
    "multi_gaussian",
    grad=_multi_gaussian_grad,
    smooth=_multi_gaussian_smooth,
    sigma=0.5,
    height=0.15,
    scale=6.0,
)
register_surrogate(
    "biper_sine",
    grad=lambda x, omega: 0.5 * omega * jnp.cos(omega * x),
    smooth=lambda x, omega: 0.5 * (1.0 + jnp.sin(omega * x)),
    omega=1.0,
)
