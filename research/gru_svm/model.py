"""GRU-SVM: a GRU encoder with a linear SVM head trained by the squared hinge loss (Agarap 2017).

The paper replaces the softmax classifier on top of a GRU with a one-vs-rest linear SVM (an
"L2-SVM": squared hinge loss plus an L2 penalty on the head's weights) and reports higher test
accuracy than the same GRU with softmax on intrusion-detection traffic data. Here both heads sit
on the same `lib.nn.rnn.mixers.GRU` encoder; only the head's loss differs:

- softmax: `mean_b CE(f(x_b), y_b)`;
- L2-SVM:  `C * mean_b sum_k max(0, 1 - t_bk f_k(x_b))^2 + l2 / 2 * ||W_head||^2`, with
  `t_bk = +1` for the true class and `-1` otherwise; prediction `argmax_k f_k(x)` for both.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from lib.nn.rnn.mixers import GRU

HEADS = ("softmax", "svm")


class GRUClassifier(nn.Module):
    """Sequence classifier: GRU over time, final hidden state, linear head.

    Attributes:
      num_classes: outputs (class scores for either head).
      hidden: GRU width.
      dropout_rate: dropout on the final hidden state in training.
    """

    num_classes: int
    hidden: int = 64
    dropout_rate: float = 0.0

    @nn.compact
    def __call__(self, x_BxLxD: jax.Array, train: bool = False) -> jax.Array:
        """Args: `x_BxLxD: [b, l, d]`. Returns: scores `[b, num_classes]`."""
        if x_BxLxD.ndim != 3:
            raise ValueError(f"`x` must have rank 3 [b, l, d], got shape {x_BxLxD.shape}")
        gru = GRU(dim=x_BxLxD.shape[-1], hidden_dim=self.hidden, out_proj=False, name="gru")
        _, h_BxH = gru(x_BxLxD, return_state=True)
        h_BxH = nn.Dropout(self.dropout_rate, deterministic=not train)(h_BxH)
        return nn.Dense(self.num_classes, name="head")(h_BxH)


def squared_hinge_loss(scores_BxK: jax.Array, labels_B: jax.Array, c: float = 1.0) -> jax.Array:
    """One-vs-rest squared hinge: `c * mean_b sum_k max(0, 1 - t_bk * s_bk)^2`.

    Args:
      scores_BxK: SVM scores `[b, k]`.
      labels_B: integer classes `[b]`.
      c: the SVM's penalty parameter `C`.

    Returns:
      Scalar loss (float32).
    """
    if scores_BxK.ndim != 2 or labels_B.shape != scores_BxK.shape[:1]:
        raise ValueError(
            f"scores must be [b, k] and labels [b]; got {scores_BxK.shape}, {labels_B.shape}"
        )
    t = 2.0 * jax.nn.one_hot(labels_B, scores_BxK.shape[-1]) - 1.0
    margin = jnp.maximum(0.0, 1.0 - t * scores_BxK.astype(jnp.float32))
    return c * jnp.mean(jnp.sum(margin**2, axis=-1))


def head_l2(params, l2: float) -> jax.Array:
    """`l2 / 2 * ||W_head||^2` (the SVM's margin term; biases are not penalised)."""
    w = params["head"]["kernel"]
    return 0.5 * l2 * jnp.sum(w.astype(jnp.float32) ** 2)


def head_loss(model_cfg):
    """`(loss_fn, extra_loss)` of `model_cfg.head` for `lib.train.fit` / `lib.data.arrays`:
    softmax cross-entropy and none, or the squared hinge (`C = svm_c`) and the head's
    `svm_l2 / 2 ||W||^2`."""
    from lib.train.fit import softmax_cross_entropy

    if model_cfg.head not in HEADS:
        raise ValueError(f"model.head must be one of {HEADS}, got {model_cfg.head!r}")
    if model_cfg.head == "softmax":
        return softmax_cross_entropy, None
    c, l2 = model_cfg.svm_c, model_cfg.svm_l2
    return (lambda s, y: squared_hinge_loss(s, y, c)), (lambda params, step: head_l2(params, l2))


def load_sequences(config):
    """`(x_train, y_train, x_test, y_test, num_classes)` of `config.data.name` as sequences."""
    from research.self_normalizing.data import load_arrays

    return load_arrays(config.data.name, seed=0, as_sequence=True)


def make_study_fit(config, num_classes: int):
    """The in-memory fit (`lib.train.fit`) of `config`'s model, head and recipe."""
    from lib.train.fit import make_fit
    from lib.train.optim import make_optimizer

    m, steps = config.model, config.train.num_steps
    loss_fn, extra = head_loss(m)
    return make_fit(GRUClassifier(num_classes, m.hidden, m.dropout_rate),
                    make_optimizer(config.optimizer, steps), loss_fn, steps=steps,
                    batch_size=config.data.batch_size, extra_loss=extra)  # fmt: skip


def build(config) -> dict:
    """One GRU classifier with `config.model.head` for `lib.train.loop.train_and_evaluate`:
    minibatches drawn with replacement from the training split, the test split evaluated at
    the end (`test_accuracy`)."""
    from lib.data.arrays import ArrayBatches, eval_batches
    from lib.train.losses import array_loss

    x_tr, y_tr, x_te, y_te, k = load_sequences(config)
    m = config.model
    loss_fn, extra = head_loss(m)
    return dict(
        model=GRUClassifier(k, m.hidden, m.dropout_rate),
        loss_fn=array_loss(loss_fn, extra_loss=extra),
        train_data=ArrayBatches(x_tr, y_tr, config.data.batch_size, config.seed),
        eval_data=None,
        test_data=eval_batches(x_te, y_te),
    )
