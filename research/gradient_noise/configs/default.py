"""Annealed gradient noise: a 20-layer, 50-unit ReLU MLP trained by plain SGD from a poor init.

MNIST needs a prepare step (lib.data), so the offline stand-in is sklearn digits (64 features,
10 classes); the network, init, optimiser and noise schedule are the paper's.

Full run (2-core CPU, about 30 minutes when shared):
  python -m launch.gradient_noise --config=research/gradient_noise/configs/default.py \
      --workdir=/tmp/gradient_noise
Smoke (seconds):
  python -m launch.gradient_noise --config=research/gradient_noise/configs/default.py:smoke

Expected (see README): without noise no seed leaves chance (10%) from either poor init; with
eta = 0.01 some seeds escape; eta >= 0.3 diverges at this learning rate (no clipping).
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Args: `arg` = "smoke" for a seconds-long run, else None/"" for the full run."""
    smoke = arg == "smoke"
    return ml_collections.ConfigDict(
        dict(
            dataset="digits",
            # init scheme -> noise variances eta (0 = no noise); gamma below.
            grid={"simple": (0.0, 0.01)}
            if smoke
            else {"simple": (0.0, 0.01, 0.3), "zero": (0.0, 0.01)},
            gamma=0.55,
            depth=3 if smoke else 20,
            width=16 if smoke else 50,
            init_std=0.1,
            steps=20 if smoke else 6000,
            batch_size=128,
            learning_rate=0.1,
            clip_norm=ml_collections.config_dict.placeholder(float),  # None: no clipping
            seeds=2 if smoke else 6,
            success_accuracy=0.5,
        )
    )
