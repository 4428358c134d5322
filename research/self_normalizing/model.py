"""Self-normalizing MLP (Klambauer et al. 2017) and the ReLU / ReLU+BatchNorm MLPs it is compared to.

`activation` picks the family, each with the init and dropout that belong to it:

- `"selu"`: SELU, LeCun-normal weights (`N(0, 1/fan_in)`), alpha-dropout (the SNN);
- `"relu"`: ReLU, He-normal weights (`N(0, 2/fan_in)`), standard dropout;
- `"relu_bn"`: ReLU after BatchNorm, He-normal weights, standard dropout;
- `"relu_lecun"`: ReLU with the SNN's LeCun init, to show that the init alone does not
  normalise (variance halves every layer).

`hidden_statistics` runs the network at init and returns each hidden layer's mean and variance
over batch and units: the paper's Figure/Theorem 1 claim is that for SELU they stay at (0, 1).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from lib.ops.activation.selu import alpha_dropout, lecun_normal, selu

ACTIVATIONS = ("selu", "relu", "relu_bn", "relu_lecun")


def he_normal(key, shape, dtype=jnp.float32):
    """He-normal weights `N(0, 2/fan_in)` (plain normal, like `lecun_normal`)."""
    return lecun_normal(key, shape, dtype) * jnp.sqrt(2.0).astype(dtype)


class DeepMLP(nn.Module):
    """A `depth`-layer fully connected classifier.

    Attributes:
      depth: number of hidden layers.
      width: units per hidden layer.
      num_classes: outputs.
      activation: one of `ACTIVATIONS` (see module docstring).
      dropout_rate: alpha-dropout (SELU) or dropout (ReLU) rate on hidden layers.
    """

    depth: int
    width: int
    num_classes: int
    activation: str = "selu"
    dropout_rate: float = 0.0

    @nn.compact
    def __call__(self, x_BxD: jax.Array, train: bool = False) -> jax.Array:
        """Args: `x_BxD: [b, d]` (or `[b, ...]`, flattened); `train` enables dropout / BN
        batch statistics. Returns: logits `[b, num_classes]`. Sows each hidden activation
        into the `intermediates` collection as `hidden_<i>`."""
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; expected {ACTIVATIONS}")
        h = x_BxD.reshape(x_BxD.shape[0], -1)
        init = lecun_normal if self.activation in ("selu", "relu_lecun") else he_normal
        for i in range(self.depth):
            h = nn.Dense(self.width, kernel_init=init, name=f"dense_{i}")(h)
            if self.activation == "selu":
                h = selu(h)
                if train and self.dropout_rate > 0:
                    h = alpha_dropout(h, self.dropout_rate, self.make_rng("dropout"))
            else:
                if self.activation == "relu_bn":
                    h = nn.BatchNorm(use_running_average=not train, name=f"bn_{i}")(h)
                h = nn.relu(h)
                h = nn.Dropout(self.dropout_rate, deterministic=not train)(h)
            self.sow("intermediates", f"hidden_{i}", h)
        return nn.Dense(self.num_classes, kernel_init=lecun_normal, name="head")(h)


def hidden_statistics(
    model: DeepMLP, variables, x: jax.Array, *, batch_statistics: bool = False
) -> tuple[jax.Array, jax.Array]:
    """Mean and variance of every hidden layer's activations (no dropout).

    Args:
      model: a `DeepMLP` (its `dropout_rate` is ignored here).
      variables: its variables (`params`, and `batch_stats` for `relu_bn`).
      x: inputs `[b, d]`.
      batch_statistics: BatchNorm normalises with the batch's own statistics, as in training
        (else with its running averages, as in evaluation).

    Returns:
      `(means, variances)`, each `[depth]`, taken over the batch and all units of a layer.
    """
    model = model.clone(dropout_rate=0.0)
    mutable = ["intermediates", "batch_stats"] if batch_statistics else ["intermediates"]
    _, state = model.apply(variables, x, train=batch_statistics, mutable=mutable)
    inter = state["intermediates"]
    acts = [inter[f"hidden_{i}"][0] for i in range(model.depth)]
    means = jnp.stack([a.mean() for a in acts])
    variances = jnp.stack([a.var() for a in acts])
    return means, variances


def make_model(model_cfg, num_classes: int) -> DeepMLP:
    """The `DeepMLP` of a config's `model` section (depth, width, activation, dropout_rate)."""
    return DeepMLP(model_cfg.depth, model_cfg.width, num_classes, model_cfg.activation,
                   model_cfg.dropout_rate)  # fmt: skip


def make_study_fit(config, num_classes: int, num_train: int):
    """The in-memory fit (`lib.train.fit`) of `config`'s model and recipe: the optimizer of
    `config.optimizer`, `config.train.num_steps` steps, batches of `config.data.batch_size`
    (at most the training set), softmax cross-entropy, accuracy."""
    from lib.train.fit import make_fit, softmax_cross_entropy
    from lib.train.optim import make_optimizer

    steps = config.train.num_steps
    return make_fit(make_model(config.model, num_classes),
                    make_optimizer(config.optimizer, steps), softmax_cross_entropy, steps=steps,
                    batch_size=min(config.data.batch_size, num_train))  # fmt: skip


def build(config) -> dict:
    """One MLP on `config.data.name` for `lib.train.loop.train_and_evaluate`: minibatches drawn
    with replacement from the standardised training split, the test split evaluated at the
    end (`test_accuracy`), softmax cross-entropy (see configs/default.py)."""
    from lib.data.arrays import ArrayBatches, eval_batches
    from lib.train.fit import softmax_cross_entropy
    from lib.train.losses import array_loss
    from research.self_normalizing.data import load_arrays

    x_tr, y_tr, x_te, y_te, k = load_arrays(config.data.name, seed=0)
    batch = min(config.data.batch_size, len(x_tr))
    return dict(
        model=make_model(config.model, k),
        loss_fn=array_loss(softmax_cross_entropy),
        train_data=ArrayBatches(x_tr, y_tr, batch, config.seed),
        eval_data=None,
        test_data=eval_batches(x_te, y_te),
    )
