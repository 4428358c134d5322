"""AR-Net: an autoregressive model as a feed-forward net fitted by SGD (Triebe et al. 2019).

AR-Net with no hidden layer is a linear map from the last `p` values to the next one, so its
weights *are* AR coefficients; the paper fits it by stochastic gradient descent on the squared
one-step error and adds a sparsity regulariser so that, when `p` is set larger than the true
order, the surplus weights go to zero:

    R(w) = 1/p * sum_i ( 2 / (1 + exp(-c1 * |w_i|^(1/c2))) - 1 ),   c1 = c2 = 3,
    loss = mean (y_t - w . x_t)^2 + lambda * R(w).

`fit_ar_net` is the project's own short loop (a `lax.scan` over minibatch steps, jitted once),
because the claim compares a whole fit, coefficients and time, against least squares.
"""

import functools
import time
from dataclasses import dataclass

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from research.ar_net.data import lagged_windows


class ARNet(nn.Module):
    """AR-Net: `p` lags -> optional hidden ReLU layers -> next value.

    Attributes:
      hidden: widths of hidden layers; `()` (the default, the paper's interpretable AR-Net)
        makes the model linear and its kernel `[p, 1]` the AR coefficients.
      use_bias: add an intercept (off: the generated series have zero mean).
    """

    hidden: tuple[int, ...] = ()
    use_bias: bool = False

    @nn.compact
    def __call__(self, lags_BxP: jax.Array) -> jax.Array:
        """Args: `lags_BxP: [b, p]`, newest lag first. Returns: predictions `[b]`."""
        h = lags_BxP
        for width in self.hidden:
            h = nn.relu(nn.Dense(width)(h))
        init = nn.initializers.zeros if not self.hidden else nn.initializers.lecun_normal()
        return nn.Dense(1, use_bias=self.use_bias, kernel_init=init, name="out")(h)[:, 0]


def ar_coefficients(params) -> jax.Array:
    """The AR coefficients `w: [p]` of a linear (`hidden=()`) ARNet's params."""
    return params["params"]["out"]["kernel"][:, 0]


def sparsity_penalty(w: jax.Array, c1: float = 3.0, c2: float = 3.0) -> jax.Array:
    """The paper's regulariser `R(w)`, in `[0, 1)`: ~0 for all-zero `w`, ~1 for all-large `w`.

    Args:
      w: weights `[p]` (any shape; the mean is over all entries).
      c1, c2: steepness and root of the penalty (3 and 3 in the paper).
    """
    # |w|^(1/c2) has an infinite slope at 0; the tiny offset keeps its gradient finite.
    mag = (jnp.abs(w) + 1e-12) ** (1.0 / c2)
    return jnp.mean(2.0 * jax.nn.sigmoid(c1 * mag) - 1.0)


@dataclass(frozen=True)
class FitConfig:
    """Settings of `fit_ar_net` (plain values; configs/*.py build it from a ConfigDict).

    Attributes:
      steps: minibatch updates.
      batch_size: windows per update.
      learning_rate: Adam's peak step size (cosine-decayed to 1% over `steps`).
      sparsity: `lambda`, the weight of `R(w)`; 0 turns the regulariser off.
      sparsity_warmup: fraction of `steps` over which `lambda` ramps linearly from 0.
      seed: init and minibatch seed.
    """

    steps: int = 3000
    batch_size: int = 1024
    learning_rate: float = 3e-3
    sparsity: float = 0.0
    sparsity_warmup: float = 0.5
    seed: int = 0


def _make_fit(model: ARNet, cfg: FitConfig, n: int, p: int):
    """A jitted `(X, target) -> (params, loss_curve)` for fixed shapes."""
    sched = optax.cosine_decay_schedule(cfg.learning_rate, cfg.steps, alpha=0.01)
    tx = optax.adam(sched)
    warm = max(int(cfg.sparsity_warmup * cfg.steps), 1)

    def loss_fn(params, x, t, step):
        mse = jnp.mean((model.apply(params, x) - t) ** 2)
        lam = cfg.sparsity * jnp.minimum(1.0, step / warm)
        w = jax.tree.leaves(params["params"]["out"]["kernel"])[0]
        return mse + lam * sparsity_penalty(w), mse

    @jax.jit
    def fit(X, target):
        key = jax.random.key(cfg.seed)
        params = model.init(key, X[:1])
        opt_state = tx.init(params)

        def step(carry, i):
            params, opt_state = carry
            idx = jax.random.randint(jax.random.fold_in(key, i), (cfg.batch_size,), 0, n)
            (_, mse), g = jax.value_and_grad(loss_fn, has_aux=True)(params, X[idx], target[idx], i)
            upd, opt_state = tx.update(g, opt_state, params)
            return (optax.apply_updates(params, upd), opt_state), mse

        (params, _), mses = jax.lax.scan(step, (params, opt_state), jnp.arange(cfg.steps))
        return params, mses

    return fit


@functools.lru_cache(maxsize=32)
def _compiled_fit(hidden: tuple, use_bias: bool, cfg: FitConfig, n: int, p: int):
    """Compile the fit once per (model, config, shapes); later fits of the same shapes reuse it."""
    fit = _make_fit(ARNet(hidden, use_bias), cfg, n, p)
    spec = jax.ShapeDtypeStruct((n, p), jnp.float32), jax.ShapeDtypeStruct((n,), jnp.float32)
    return fit.lower(*spec).compile()


def fit_ar_net(
    y: np.ndarray, p: int, cfg: FitConfig = FitConfig(), *, model: ARNet | None = None
) -> dict:
    """Fit AR-Net of order `p` to the series `y` by minibatch Adam.

    Args:
      y: series `[n]`.
      p: number of lags (model order).
      cfg: `FitConfig`.
      model: an `ARNet`; the linear one by default.

    Returns:
      dict with `params`, `coeffs` (`[p]` numpy, linear model only, else None), `loss_curve`
      (`[steps]` minibatch MSE), `fit_seconds` (compiled run, excludes compilation) and
      `compile_seconds` (0 when an earlier fit of the same shapes was already compiled).
    """
    model = ARNet() if model is None else model
    X, target = lagged_windows(y, p)
    X, target = jnp.asarray(X, jnp.float32), jnp.asarray(target, jnp.float32)
    t0 = time.perf_counter()
    compiled = _compiled_fit(model.hidden, model.use_bias, cfg, X.shape[0], p)
    t1 = time.perf_counter()
    params, curve = jax.block_until_ready(compiled(X, target))
    t2 = time.perf_counter()
    coeffs = np.asarray(ar_coefficients(params)) if not model.hidden else None
    return dict(
        params=params,
        coeffs=coeffs,
        loss_curve=np.asarray(curve),
        fit_seconds=t2 - t1,
        compile_seconds=t1 - t0,
    )
