"""Annealed Gaussian gradient noise (Neelakantan et al. 2015, Adding Gradient Noise...).

At training step `t = 0, 1, 2, ...` every gradient entry gets independent noise
`N(0, sigma_t^2)` with `sigma_t^2 = eta / (1 + t)^gamma`, added before the optimizer's own
update (so it composes with SGD, momentum or Adam). The paper uses `gamma = 0.55` and
`eta` in `{0.01, 0.3, 1.0}`.

`optax.add_noise(eta, gamma, key)` implements exactly this schedule: its variance at its
`n`-th update (`n = 1, 2, ...`) is `eta / n^gamma`, which is `eta / (1 + t)^gamma` with
`t = n - 1`, and it adds the noise to the incoming updates (the gradients) before anything
chained after it. So we use it rather than writing our own; this module only names the paper's
schedule, exposes it for logging, and chains the noise in front of an optimizer.
"""

import jax
import jax.numpy as jnp
import optax


def gradient_noise_std(step, eta: float, gamma: float = 0.55) -> jax.Array:
    """Standard deviation `sqrt(eta / (1 + step)^gamma)` of the noise at zero-based `step`.

    Args:
      step: zero-based training step (scalar or array).
      eta: noise variance at step 0.
      gamma: annealing exponent.

    Returns:
      `sigma_t` as a float32 array of `step`'s shape.
    """
    step = jnp.asarray(step, jnp.float32)
    return jnp.sqrt(eta / (1.0 + step) ** gamma)


def annealed_gradient_noise(
    eta: float, gamma: float = 0.55, key: jax.Array | int = 0
) -> optax.GradientTransformation:
    """The paper's noise as an optax transform: adds `N(0, eta / (1 + t)^gamma)` per entry.

    Args:
      eta: noise variance at the first step (`>= 0`).
      gamma: annealing exponent (`0.55` in the paper).
      key: PRNG key or integer seed of the noise stream (carried in the optimizer state, so a
        checkpointed run resumes the same stream).

    Returns:
      An `optax.GradientTransformation` (state: `optax.AddNoiseState(count, rng_key)`).
    """
    if eta < 0:
        raise ValueError(f"`eta` must be >= 0, got {eta}")
    return optax.add_noise(eta, gamma, key)


def with_gradient_noise(
    optimizer: optax.GradientTransformation,
    eta: float,
    gamma: float = 0.55,
    key: jax.Array | int = 0,
    *,
    clip_norm: float | None = None,
) -> optax.GradientTransformation:
    """Chain `[clip] -> noise -> optimizer`; `eta == 0` returns the plain (clipped) optimizer.

    Args:
      optimizer: the base optimizer (e.g. `optax.sgd(lr)`).
      eta, gamma, key: see `annealed_gradient_noise`.
      clip_norm: if given, clip the gradient's global norm first, so the clip never shrinks
        the noise itself.

    Returns:
      An `optax.GradientTransformation`.
    """
    parts = []
    if clip_norm is not None:
        parts.append(optax.clip_by_global_norm(clip_norm))
    if eta > 0:
        parts.append(annealed_gradient_noise(eta, gamma, key))
    parts.append(optimizer)
    return parts[0] if len(parts) == 1 else optax.chain(*parts)


def reseed_noise(opt_state, key: jax.Array):
    """Give every `optax.AddNoiseState` inside `opt_state` a fresh noise key.

    The transform's key is fixed when the optimizer is built; reseeding the state instead lets
    one compiled training function run many seeds (the key is then a traced array).

    Args:
      opt_state: any optimizer state pytree (tuples, NamedTuples, lists, dicts).
      key: PRNG key; the `i`-th noise state found gets `fold_in(key, i)`.

    Returns:
      `opt_state` with the noise keys replaced (unchanged if it holds no noise state).
    """
    counter = [0]

    def visit(node):
        if isinstance(node, optax.AddNoiseState):
            new = node._replace(rng_key=jax.random.fold_in(key, counter[0]))
            counter[0] += 1
            return new
        if isinstance(node, tuple) and hasattr(node, "_fields"):
            return type(node)(*(visit(c) for c in node))
        if isinstance(node, tuple | list):
            return type(node)(visit(c) for c in node)
        if isinstance(node, dict):
            return {k: visit(v) for k, v in node.items()}
        return node

    return visit(opt_state)
