"""AR-Net: an autoregressive model as a feed-forward net fitted by SGD (Triebe et al. 2019).

AR-Net with no hidden layer is a linear map from the last `p` values to the next one, so its
weights *are* AR coefficients; the paper fits it by stochastic gradient descent on the squared
one-step error and adds a sparsity regulariser so that, when `p` is set larger than the true
order, the surplus weights go to zero:

    R(w) = 1/p * sum_i ( 2 / (1 + exp(-c1 * |w_i|^(1/c2))) - 1 ),   c1 = c2 = 3,
    loss = mean (y_t - w . x_t)^2 + lambda * R(w).

One model trains as a run (`build`, `lib.train.loop`); the studies fit many processes at once
in memory (`make_study_fit`, `lib.train.fit`), and `fit_ar_net` times one compiled fit, because
the claim compares a whole fit, coefficients and time, against least squares.
"""

import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

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


def sparsity_loss(model_cfg, num_steps: int):
    """`extra_loss(params, step)` for `lib.train.fit` / `lib.data.arrays`: `lambda_t R(w)`,
    `lambda_t = model_cfg.sparsity * min(1, step / warm)` ramping up over the first
    `model_cfg.sparsity_warmup` fraction of `num_steps` (None when `sparsity` is 0)."""
    if not model_cfg.sparsity:
        return None
    warm = max(int(model_cfg.sparsity_warmup * num_steps), 1)

    def extra(params, step):
        lam = model_cfg.sparsity * jnp.minimum(1.0, step / warm)
        return lam * sparsity_penalty(params["out"]["kernel"])

    return extra


def make_model(model_cfg) -> ARNet:
    return ARNet(tuple(model_cfg.hidden), model_cfg.use_bias)


def make_study_fit(config):
    """The in-memory fit (`lib.train.fit`) of `config`'s AR-Net and recipe: the optimizer of
    `config.optimizer` (Adam, cosine decay to 1%), minibatch MSE plus the ramped sparsity
    penalty, `config.train.num_steps` steps of `config.data.batch_size` windows."""
    from lib.train.fit import make_fit, mean_squared_error
    from lib.train.optim import make_optimizer

    steps = config.train.num_steps
    return make_fit(make_model(config.model), make_optimizer(config.optimizer, steps),
                    mean_squared_error, steps=steps, batch_size=config.data.batch_size,
                    extra_loss=sparsity_loss(config.model, steps), metrics=None,
                    train_flag=False)  # fmt: skip


def fit_ar_net(y: np.ndarray, config, seed: int = 0) -> dict:
    """Fit `config`'s AR-Net of order `config.model.p` to one series `y` (`make_study_fit`).

    Returns:
      dict with `coeffs` (`[p]` numpy, linear model only, else None), `loss_curve`
      (`[steps]`), `fit_seconds` (the compiled run, compilation excluded) and
      `compile_seconds`.
    """
    X, target = lagged_windows(y, config.model.p)
    splits = {"train": (jnp.asarray(X, jnp.float32), jnp.asarray(target, jnp.float32))}
    fit = make_study_fit(config)
    key = jax.random.key(seed)
    t0 = time.perf_counter()
    compiled = jax.jit(fit.run).lower(key, splits).compile()
    t1 = time.perf_counter()
    result = jax.block_until_ready(compiled(key, splits))
    t2 = time.perf_counter()
    params = result["variables"]
    coeffs = np.asarray(ar_coefficients(params)) if not config.model.hidden else None
    return dict(coeffs=coeffs, loss_curve=np.asarray(result["loss"]), fit_seconds=t2 - t1,
                compile_seconds=t1 - t0)  # fmt: skip


def make_process(data_cfg, seed: int):
    """`(w, y)`: coefficients of order `data_cfg.true_p` drawn with `seed` (sampler
    `data_cfg.kind`, smallest magnitude `data_cfg.min_abs`) and a series of
    `data_cfg.length` samples from it (innovations seeded `10_000 + seed`)."""
    from research.ar_net.data import generate_ar_process, random_stable_coeffs

    w = random_stable_coeffs(data_cfg.true_p, seed, kind=data_cfg.kind, min_abs=data_cfg.min_abs)
    return w, generate_ar_process(w, data_cfg.length, seed=10_000 + seed)


def build(config) -> dict:
    """One AR-Net of order `config.model.p` on a generated AR(`config.data.true_p`) process
    (`config.data.process_seed`) for `lib.train.loop.train_and_evaluate`: minibatches of lag
    windows drawn with replacement, the sparsity penalty ramped by the batch's step, a fresh
    stretch of the same process (a fifth of the length) as the test split, and at the end the
    coefficients' sTPE against the truth and the estimated order (`test_stpe`,
    `test_estimated_order`)."""
    from lib.data.arrays import ArrayBatches, eval_batches
    from lib.train.fit import mean_squared_error
    from lib.train.losses import array_loss
    from research.ar_net.data import estimated_order, generate_ar_process, stpe

    d, p = config.data, config.model.p
    w, y = make_process(d, d.process_seed)
    y_test = generate_ar_process(w, max(d.length // 5, p + 1), seed=20_000 + d.process_seed)
    steps = config.train.num_steps

    def on_end(state, workdir):
        if config.model.hidden:
            return {}
        coeffs = np.asarray(jax.device_get(state.params["out"]["kernel"][:, 0]))
        return {"test_stpe": stpe(coeffs, w), "test_estimated_order": estimated_order(coeffs)}

    return dict(
        model=make_model(config.model),
        loss_fn=array_loss(mean_squared_error, metrics=None, train_flag=False,
                           extra_loss=sparsity_loss(config.model, steps)),
        train_data=ArrayBatches(*lagged_windows(y, p), d.batch_size, config.seed, with_step=True),
        eval_data=None,
        test_data=eval_batches(*lagged_windows(y_test, p)),
        on_end=on_end,
    )  # fmt: skip
