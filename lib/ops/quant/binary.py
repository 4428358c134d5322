"""Binarization: sign + STE (BinaryConnect), XNOR-Net scaling, BiPer (Vargas et al. 2024) and
BiPFT's low-rank estimate of the binarization residual in attention (Xing et al. 2023).

- `sign_ste(x)`: `+1/-1` forward (sign(0) = +1), clipped identity gradient (|x| <= 1).
- `xnor_binarize(x, axis)`: `alpha * sign(x)` with `alpha = mean|x|` over `axis` (XNOR-Net's
  optimal L2 scale), straight-through.
- `biper(x, omega)`: BiPer's periodic binarization: forward the square wave
  `sign(sin(omega x))`, backward the sine's derivative `omega cos(omega x)`.
- `bipft_scores(q, k, x, est_q, est_k)`: binary attention logits `q_hat k_hat^T` with
  `q_hat = bin(q) + x U_q V_q` (and the same for k): the expansion is BiPFT's binarization
  residual polynomial `Qb Kb^T + Qb Rk^T + Rq Kb^T + Rq Rk^T` with low-rank estimators `R`;
  `fit_bipft_estimators` fits them on calibration tokens (alternating least squares).
"""

import functools

import jax
import jax.numpy as jnp


def _sign(x):
    return jnp.where(x >= 0, 1.0, -1.0).astype(jnp.result_type(x))


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def sign_ste(x, clip: float = 1.0):
    """Sign forward (+1 at 0); gradient passed through where |x| <= clip (None: everywhere).

    Args:
      x: float array.
      clip: straight-through window (the hardtanh STE); None for a plain identity.

    Returns:
      array like `x` with values in {-1, +1}.
    """
    return _sign(x)


def _sign_fwd(x, clip):
    return _sign(x), x


def _sign_bwd(clip, x, g):
    if clip is None:
        return (g,)
    return (jnp.where(jnp.abs(x) <= clip, g, 0.0).astype(g.dtype),)


sign_ste.defvjp(_sign_fwd, _sign_bwd)


def xnor_scale(x, axis=None):
    """XNOR-Net's scale `mean|x|` over the reduced `axis` (None: all), kept dims."""
    return jnp.mean(jnp.abs(x), axis=axis, keepdims=True)


def xnor_binarize(x, axis=None, *, clip=None):
    """`alpha * sign(x)`, the best binary approximation of `x` in L2 for each scale group.

    Args:
      x: e.g. a kernel `[in, out]` with `axis=0` (one alpha per output unit).
      axis: axes averaged for alpha (None: one alpha for the tensor).
      clip: STE window for the sign (None: identity gradient through the sign).

    Returns:
      array like `x`; gradients flow through alpha exactly and through the sign by STE.
    """
    return xnor_scale(x, axis) * sign_ste(x, clip)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def biper(x, omega: float):
    """BiPer binarization: `sign(sin(omega x))` forward, `d/dx sin(omega x)` backward.

    Args:
      x: latent weights.
      omega: frequency; the square wave's period is `2 pi / omega`. Larger omega makes the
        surrogate steeper (larger gradients, more sign flips per update).

    Returns:
      array like `x` with values in {-1, +1} (+1 where sin(omega x) == 0).
    """
    return _sign(jnp.sin(omega * x))


def _biper_fwd(x, omega):
    return biper(x, omega), x


def _biper_bwd(omega, x, g):
    return ((g * omega * jnp.cos(omega * x)).astype(g.dtype),)


biper.defvjp(_biper_fwd, _biper_bwd)


def biper_scaled(w, omega: float, axis=None):
    """BiPer weights with an XNOR scale: `mean|sin(omega w)| * biper(w, omega)` per group."""
    alpha = jnp.mean(jnp.abs(jnp.sin(omega * w)), axis=axis, keepdims=True)
    return alpha * biper(w, omega)


def _truncate(a, rank):
    """Best rank-r factors `(U [m, r], V [r, n])` of `a` by SVD."""
    u, sv, vt = jnp.linalg.svd(a, full_matrices=False)
    return u[:, :rank] * sv[:rank], vt[:rank]


def fit_bipft_estimators(q, k, x, rank: int, *, iters: int = 6, axis=-1):
    """Fit the low-rank residual estimators to the attention logits on calibration tokens.

    Alternating least squares on `||(qb + x A)(kb + x B)^T - q k^T||_F` (A, B: `[d_in, d]`),
    each solve truncated to rank r: the estimators model the whole residual polynomial
    `Qb Rk^T + Rq Kb^T + Rq Rk^T`, not each factor's residual separately.

    Args:
      q, k: `[l, d]` full-precision queries and keys of one calibration sequence.
      x: `[l, d_in]` the inputs the estimators read.
      rank: r.

    Returns:
      (est_q, est_k), each `(U [d_in, r], V [r, d])`, for `bipft_scores`.
    """
    qb, kb = xnor_binarize(q, axis), xnor_binarize(k, axis)
    s = q @ k.T
    x_pinv = jnp.linalg.pinv(x)
    a = jnp.zeros((x.shape[-1], q.shape[-1]), q.dtype)
    b = jnp.zeros_like(a)
    for _ in range(iters):
        kh = kb + x @ b
        a = x_pinv @ (s - qb @ kh.T) @ jnp.linalg.pinv(kh.T)
        a = jnp.matmul(*_truncate(a, rank))
        qh = qb + x @ a
        b = (jnp.linalg.pinv(qh) @ (s - qh @ kb.T) @ x_pinv.T).T
        b = jnp.matmul(*_truncate(b, rank))
    return _truncate(a, rank), _truncate(b, rank)


def bipft_scores(q, k, x, est_q=None, est_k=None, *, axis=-1):
    """Binary attention logits with BiPFT's low-rank residual estimate.

    Args:
      q, k: queries and keys `[..., l, d]` (full precision, binarized here with XNOR scales
        over `axis`).
      x: the block's input `[..., l, d_in]` that the estimators read.
      est_q, est_k: `(U [d_in, r], V [r, d])` residual estimators, or None to leave out.

    Returns:
      logits `[..., l, l]` = `(qb + x U_q V_q) (kb + x U_k V_k)^T`.
    """
    qh = xnor_binarize(q, axis)
    kh = xnor_binarize(k, axis)
    if est_q is not None:
        qh = qh + x @ est_q[0] @ est_q[1]
    if est_k is not None:
        kh = kh + x @ est_k[0] @ est_k[1]
    return qh @ jnp.swapaxes(kh, -1, -2)
