"""Annealed gradient noise: a 20-layer, 50-unit ReLU MLP trained by plain SGD from a poor init.

MNIST needs a prepare step (lib.data), so the offline stand-in is sklearn digits (64 features,
10 classes); the network, init, optimiser and noise schedule are the paper's.

One model (a run with checkpoints, `lib.train.loop`):
  python -m launch.train --config=research/gradient_noise/configs/default.py \
      --workdir=/tmp/gn_run --config.optimizer.gradient_noise_eta=0.01
The restart sweep (every init x eta of `study.grid` over 6 seeds, lib.train.fit; 2-core CPU,
about 30 minutes when shared):
  python -m launch.gradient_noise --config=research/gradient_noise/configs/default.py \
      --workdir=/tmp/gradient_noise
Smoke (seconds): add `:smoke` to the config path.

Expected (see README): without noise no seed leaves chance (10%) from either poor init; with
eta = 0.01 some seeds escape; eta >= 0.3 diverges at this learning rate (no clipping).
"""

import ml_collections

from lib.train.config import base_config, parse_arg


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Args: `arg` = "smoke" for a seconds-long run, else None/"" for the full run."""
    smoke = parse_arg(arg, flags=("smoke",))["smoke"]
    c = base_config()
    c.project = "gradient_noise"
    c.model = ml_collections.ConfigDict(
        dict(kind="deep_relu", depth=3 if smoke else 20, width=16 if smoke else 50,
             init_scheme="simple", init_std=0.1)
    )  # fmt: skip
    c.data = ml_collections.ConfigDict(dict(name="digits", batch_size=128))
    # Plain SGD 0.1, no clipping; the noise N(0, eta / (1 + t)^gamma) is added to the gradient.
    c.optimizer.update(name="sgd", learning_rate=0.1, schedule="constant", warmup_steps=0,
                       weight_decay=0.0, grad_clip_norm=0.0, gradient_noise_eta=0.0,
                       gradient_noise_gamma=0.55)  # fmt: skip
    c.train.update(num_steps=20 if smoke else 6000, log_every=10 if smoke else 500,
                   eval_every=0, checkpoint_every=0)  # fmt: skip
    c.study = ml_collections.ConfigDict(
        dict(
            # init scheme -> noise variances eta (0 = no noise)
            grid={"simple": (0.0, 0.01)}
            if smoke
            else {"simple": (0.0, 0.01, 0.3), "zero": (0.0, 0.01)},
            seeds=2 if smoke else 6,
            first_seed=0,
            success_accuracy=0.5,  # a restart succeeds when its test accuracy reaches this
        )
    )
    return c
