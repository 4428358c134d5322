"""Many seeds at once: the forecast config's model, optimizer and data, trained in memory.

`launch/deconstructing.py` trains one (variant, seed) at a time through
`lib.train.train_and_evaluate` (sharded steps, checkpoints, metrics): minutes each on a loaded
CPU. For a seed study the same model (`make_model`), optimizer (`lib.train.optim.make_optimizer`
on `config.optimizer`), step count and batch size are trained here as one jitted `lax.scan`,
vmapped over seeds (one compile per variant). What differs from the launch script: batches are
drawn uniformly with replacement (not shuffled epochs) and the init / batch RNGs are derived
from `jax.random.key(seed)` differently, so a seed's number is not the launch script's.

  python -m research.deconstructing.seeds \
      --config=research/deconstructing/configs/forecast.py:lorenz96,rnn+gru --seeds=5

Prints per-seed rows and a mean +- std table (test MSE relative to persistence).
"""

import jax
import jax.numpy as jnp
import numpy as np


def split_arrays(config, split: str):
    """`(inputs, targets)` float32 numpy of a prepared split of `config.data` (all windows)."""
    from lib.data.pipeline import data_source, load

    d = config.data.data_dir or None
    n = len(data_source(config.data.name, split, data_dir=d))
    it = load(config.data.name, split, batch_size=n, shuffle=False, num_epochs=1, data_dir=d,
              shard_index=0, shard_count=1)  # fmt: skip
    b = next(iter(it))
    return np.asarray(b["inputs"], np.float32), np.asarray(b["targets"], np.float32)


def fit_seeds(model, tx, x, y, *, steps: int, batch_size: int, seeds) -> tuple:
    """Train `model` on next-step MSE from every seed at once (vmap) in one jitted scan.

    Args:
      model: a `Forecaster` (or any module `[b, l, f] -> [b, l, f]`).
      tx: an optax optimizer.
      x, y: training inputs / targets `[n, l, f]`.
      steps, batch_size: updates, and windows drawn (with replacement) per update.
      seeds: integer seeds (init and batch order).

    Returns:
      `(params, apply)`: params with a leading seed axis and `model.apply`.
    """
    x, y = jnp.asarray(x), jnp.asarray(y)

    def one(key):
        k_init, k_data = jax.random.split(key)
        params = model.init(k_init, x[:2])
        idx = jax.random.randint(k_data, (steps, batch_size), 0, len(x))

        def loss(p, i):
            return jnp.mean(jnp.square(model.apply(p, x[i]) - y[i]))

        def step(carry, i):
            p, o = carry
            u, o = tx.update(jax.grad(loss)(p, i), o, p)
            return (jax.tree_util.tree_map(jnp.add, p, u), o), None

        (params, _), _ = jax.lax.scan(step, (params, tx.init(params)), idx)
        return params

    keys = jnp.stack([jax.random.key_data(jax.random.key(int(s))) for s in seeds])
    params = jax.jit(jax.vmap(lambda k: one(jax.random.wrap_key_data(k))))(keys)
    return params, model.apply


def relative_test_mse(apply, params, x, y) -> np.ndarray:
    """Per seed: test MSE / persistence MSE (`params` with a leading seed axis)."""
    pred = jax.jit(jax.vmap(lambda p: apply(p, jnp.asarray(x))))(params)
    mse = np.mean(np.square(np.asarray(pred) - y[None]), axis=(1, 2, 3))
    return mse / np.mean(np.square(x - y))


def run(config, seeds) -> list[dict]:
    """Rows `{variant, seed, relative_mse}` for every variant of `config.model.variant`
    ("all" or names joined by "+") and seed."""
    import copy

    from lib.train.optim import make_optimizer
    from research.deconstructing.model import VARIANTS, make_model, prepare

    info = prepare(config)
    x, y = split_arrays(config, "train")
    x_test, y_test = split_arrays(config, "test")
    v = config.model.variant
    rows = []
    for name in list(VARIANTS) if v == "all" else v.split("+"):
        c = copy.deepcopy(config)
        c.model.variant = name
        model = make_model(c, info["input_dim"])
        tx = make_optimizer(c.optimizer, c.train.num_steps)
        params, apply = fit_seeds(model, tx, x, y, steps=c.train.num_steps,
                                  batch_size=c.data.batch_size, seeds=seeds)  # fmt: skip
        for seed, rel in zip(seeds, relative_test_mse(apply, params, x_test, y_test)):
            rows.append({"variant": name, "seed": int(seed), "relative_mse": float(rel)})
            print(rows[-1], flush=True)
    return rows


if __name__ == "__main__":
    from absl import app, flags
    from ml_collections import config_flags

    from launch._report import report

    _CONFIG = config_flags.DEFINE_config_file("config", None, "configs/forecast.py:<data>,<v>")
    _SEEDS = flags.DEFINE_integer("seeds", 5, "seeds 0 .. seeds-1")
    _WORKDIR = flags.DEFINE_string("workdir", None, "where results.json / results.md go")

    def _main(argv):
        from launch.deconstructing import summarize

        del argv
        rows = run(_CONFIG.value, list(range(_SEEDS.value)))
        name = f"seeds_{_CONFIG.value.data.name}"
        report({name: rows, f"{name}_summary": summarize(rows)}, _WORKDIR.value)

    app.run(_main)
