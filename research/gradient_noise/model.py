"""The deep fully connected ReLU network of Neelakantan et al. 2015 (Adding Gradient Noise...).

Twenty hidden layers of 50 ReLU units; what makes it hard to train with plain SGD is the init:

- `"simple"`: every weight `N(0, init_std^2)` with `init_std = 0.1`, the paper's "simple init"
  (per layer the signal's variance is multiplied by about `50 * 0.01 / 2 = 0.25`, so after 20
  layers it has all but vanished, and so have the gradients);
- `"zero"`: all weights and biases zero, the paper's worst case (every hidden unit is identical
  and, ReLU(0) having zero slope, no gradient reaches a hidden weight: only noise can move them);
- `"he"`: He-normal `N(0, 2/fan_in)`, a good init for reference.
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
