"""The train state pytree (as in Flax's examples): step, params, optimizer state, RNG."""

from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class TrainState:
    """Everything a training run needs to continue exactly where it stopped.

    Attributes:
      step: int32 scalar, the number of optimizer updates done so far.
      params: the model's `params` collection.
      opt_state: the optax optimizer state for `params`.
      rng: a PRNG key; each step uses `jax.random.fold_in(rng, step)`, so the random stream
        depends only on the seed and the step (an exact resume needs nothing else).
      model_state: the model's other (mutable) collections, e.g. `batch_stats`; None if none.
      tx: the optax transformation (static: not a pytree leaf, not checkpointed).
    """

    step: jax.Array
    params: Any
    opt_state: Any
    rng: jax.Array
    model_state: Any = None
    tx: optax.GradientTransformation = flax.struct.field(pytree_node=False, default=None)

    def apply_gradients(self, grads, model_state=None) -> "TrainState":
        """One optimizer update; returns the new state with `step + 1`."""
        updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
        params = optax.apply_updates(self.params, updates)
        return self.replace(
            step=self.step + 1,
            params=params,
            opt_state=opt_state,
            model_state=self.model_state if model_state is None else model_state,
        )


def create_train_state(model, tx, rng, *init_args, **init_kwargs) -> TrainState:
    """Initialize a model and its optimizer.

    Args:
      model: a Flax Linen module.
      tx: an optax `GradientTransformation` (see `lib.train.optim.make_optimizer`).
      rng: a PRNG key; split into the init keys (`params`, `dropout`) and the train key.
      *init_args, **init_kwargs: passed to `model.init` (e.g. an example batch of inputs).

    Returns:
      A `TrainState` at step 0. Collections other than `params` go to `model_state`.
    """
    params_rng, dropout_rng, train_rng = jax.random.split(rng, 3)
    variables = model.init(
        {"params": params_rng, "dropout": dropout_rng}, *init_args, **init_kwargs
    )
    variables = flax.core.unfreeze(variables)
    params = variables.pop("params")
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        opt_state=tx.init(params),
        rng=train_rng,
        model_state=variables or None,
        tx=tx,
    )


def step_rng(state: TrainState) -> jax.Array:
    """The PRNG key for the current step (a pure function of the seed and `state.step`)."""
    return jax.random.fold_in(state.rng, state.step)


def num_params(params) -> int:
    """Total number of scalars in a parameter pytree."""
    return int(sum(x.size for x in jax.tree_util.tree_leaves(params)))
