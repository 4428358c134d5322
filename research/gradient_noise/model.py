"""The deep fully connected ReLU network of Neelakantan et al. 2015 (Adding Gradient Noise...).

Twenty hidden layers of 50 ReLU units; what makes it hard to train with plain SGD is the init:

- `"simple"`: every weight `N(0, init_std^2)` with `init_std = 0.1`, the paper's "simple init"
  (per layer the signal's variance is multiplied by about `50 * 0.01 / 2 = 0.25`, so after 20
  layers it has all but vanished, and so have the gradients);
- `"zero"`: all weights and biases zero, the paper's worst case (every hidden unit is identical
  and, ReLU(0) having zero slope, no gradient reaches a hidden weight: only noise can move them);
- `"he"`: He-normal `N(0, 2/fan_in)`, a good init for reference.

`build(config)` trains one model (this net on digits, or the Neural GPU of `multiplication.py`
on binary multiplication: `config.model.kind`) through `lib.train.loop`; `make_study_fit` is the
same model and recipe as an in-memory `lib.train.fit` with the noise variance `eta` a traced
hyper-parameter, for the restart sweeps.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

INITS = ("simple", "zero", "he")


class DeepReLUNet(nn.Module):
    """`depth` hidden ReLU layers of `width` units and a linear classifier head.

    Attributes:
      num_classes: outputs.
      depth: hidden layers (20 in the paper).
      width: units per hidden layer (50 in the paper).
      init_scheme: one of `INITS` (see module docstring); the head uses the same init.
      init_std: standard deviation of the "simple" init.
    """

    num_classes: int
    depth: int = 20
    width: int = 50
    init_scheme: str = "simple"
    init_std: float = 0.1

    def _kernel_init(self):
        if self.init_scheme == "simple":
            return nn.initializers.normal(self.init_std)
        if self.init_scheme == "zero":
            return nn.initializers.zeros
        return nn.initializers.variance_scaling(2.0, "fan_in", "normal")

    @nn.compact
    def __call__(self, x_BxD: jax.Array, train: bool = False) -> jax.Array:
        """Args: `x_BxD: [b, ...]` (flattened); `train` is unused (no dropout, no BN).
        Returns: logits `[b, num_classes]`."""
        del train
        if self.init_scheme not in INITS:
            raise ValueError(f"unknown init_scheme {self.init_scheme!r}; expected one of {INITS}")
        h = x_BxD.reshape(x_BxD.shape[0], -1)
        for i in range(self.depth):
            h = nn.relu(nn.Dense(self.width, kernel_init=self._kernel_init(), name=f"dense_{i}")(h))
        return nn.Dense(self.num_classes, kernel_init=self._kernel_init(), name="head")(h)


def zero_init_gradients_vanish(model: DeepReLUNet, x: jax.Array, y: jax.Array) -> bool:
    """True when, at init, every hidden kernel's gradient is exactly zero (the zero-init trap).

    Args:
      model: a `DeepReLUNet`.
      x: inputs `[b, d]`; y: integer labels `[b]`.
    """
    import optax

    params = jax.jit(model.init)(jax.random.key(0), x)

    def loss(p):
        logits = model.apply(p, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    g = jax.jit(jax.grad(loss))(params)["params"]
    return all(bool(jnp.all(g[f"dense_{i}"]["kernel"] == 0)) for i in range(model.depth))


KINDS = ("deep_relu", "neural_gpu")


def load_data(config) -> dict:
    """`{split: (x, y)}` of the config's task: standardised sklearn digits ("train", "test"),
    or binary-multiplication tapes generated in memory ("train", "validation", "test")."""
    if config.model.kind == "neural_gpu":
        from research.gradient_noise.multiplication import generate_tapes

        d = config.data
        return generate_tapes(d.train_max_len, d.test_max_len, d.num_train, d.num_test)
    from research.self_normalizing.data import load_arrays

    x_tr, y_tr, x_te, y_te, _ = load_arrays(config.data.name, seed=0)
    return {"train": (x_tr, y_tr), "test": (x_te, y_te)}


def make_model(config, splits) -> nn.Module:
    """The config's model (`config.model.kind`) sized for the data `splits`."""
    m = config.model
    if m.kind not in KINDS:
        raise ValueError(f"model.kind must be one of {KINDS}, got {m.kind!r}")
    if m.kind == "neural_gpu":
        from lib.data.algorithmic import DIGIT0
        from research.gradient_noise.multiplication import NeuralGPU

        # Tokens: PAD, SEP, EOS, PLUS, TIMES, then the binary digits 0 and 1.
        return NeuralGPU(DIGIT0 + 2, channels=m.channels, layers=m.layers,
                         step_ratio=m.step_ratio)  # fmt: skip
    num_classes = int(max(y.max() for _, y in splits.values())) + 1
    return DeepReLUNet(num_classes, m.depth, m.width, m.init_scheme, m.init_std)


def _metrics(config):
    if config.model.kind == "neural_gpu":
        from research.gradient_noise.multiplication import tape_metrics

        return tape_metrics
    from lib.train.fit import accuracy

    return accuracy


def noisy_optimizer(opt_cfg, num_steps: int, eta):
    """`lib.train.optim.make_optimizer(opt_cfg)` with the annealed noise `N(0, eta / (1 +
    t)^gamma)` where `make_optimizer` puts it (after the clip, before the optimizer), but `eta`
    may be a traced array: one compiled fit serves every noise level, and `eta = 0` adds
    exactly zero."""
    import optax

    from lib.train.optim import make_optimizer

    base = opt_cfg.copy_and_resolve_references()
    clip, gamma = base.grad_clip_norm, base.gradient_noise_gamma
    base.grad_clip_norm, base.gradient_noise_eta = 0.0, 0.0
    parts = [optax.clip_by_global_norm(clip)] if clip else []
    return optax.chain(*parts, optax.add_noise(eta, gamma, 0), make_optimizer(base, num_steps))


def make_study_fit(config, splits):
    """The in-memory fit (`lib.train.fit`) of the config's model and recipe; its `tx` is a
    factory of `{"eta": noise variance}` (see `noisy_optimizer`)."""
    from lib.train.fit import make_fit, softmax_cross_entropy

    steps = config.train.num_steps
    return make_fit(make_model(config, splits),
                    lambda h: noisy_optimizer(config.optimizer, steps, h["eta"]),
                    softmax_cross_entropy, steps=steps, batch_size=config.data.batch_size,
                    metrics=_metrics(config))  # fmt: skip


def build(config) -> dict:
    """One model for `lib.train.loop.train_and_evaluate` (the noise of
    `config.optimizer.gradient_noise_eta` comes with `make_optimizer`): minibatches drawn with
    replacement from the training split, the validation split (multiplication) evaluated as
    `eval`, the test split at the end."""
    from lib.data.arrays import ArrayBatches, eval_batches
    from lib.train.fit import softmax_cross_entropy
    from lib.train.losses import array_loss

    splits = load_data(config)
    held_out = {k: eval_batches(*v) for k, v in splits.items() if k != "train"}
    return dict(
        model=make_model(config, splits),
        loss_fn=array_loss(softmax_cross_entropy, metrics=_metrics(config)),
        train_data=ArrayBatches(*splits["train"], config.data.batch_size, config.seed),
        eval_data=held_out.get("validation"),
        test_data=held_out["test"],
    )
