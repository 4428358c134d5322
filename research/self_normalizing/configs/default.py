"""Self-normalizing networks: activation statistics of a 32-layer MLP; deep SNN vs ReLU MLPs.

Full run (2-core CPU, about 10 minutes):
  python -m launch.self_normalizing --config=research/self_normalizing/configs/default.py \
      --workdir=/tmp/snn
Smoke (seconds):
  python -m launch.self_normalizing --config=research/self_normalizing/configs/default.py:smoke

Expected (see README): at init, every hidden layer of the 32-layer SELU/LeCun MLP has mean within
~0.05 of 0 and variance within ~0.1 of 1, while ReLU/LeCun's variance collapses (~1e-5 by layer
16) and ReLU/He's mean sits near 0.5; trained with plain SGD on sklearn digits, the 32-layer SNN
reaches at least the test accuracy of the ReLU and ReLU+BatchNorm MLPs of the same size.
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Args: `arg` = "smoke" (seconds), "ucr" (the UCR training comparison only), else the full
    run. UCR sets must be prepared first: `python -m lib.data prepare ucr_gunpoint` (and
    `ucr_italy_power_demand`, `ucr_arrowhead`)."""
    smoke = arg == "smoke"
    ucr = ("ucr:gunpoint", "ucr:italy_power_demand", "ucr:arrowhead")
    c = ml_collections.ConfigDict()
    c.run_stats = arg != "ucr"
    c.stats = ml_collections.ConfigDict(
        dict(
            activations=("selu", "relu", "relu_bn", "relu_lecun"),
            depth=4 if smoke else 32,
            width=32 if smoke else 256,
            in_dim=64,
            batch=64 if smoke else 1024,
            seeds=1 if smoke else 5,
        )
    )
    c.train = ml_collections.ConfigDict(
        dict(
            datasets=("digits",) if smoke else ucr if arg == "ucr" else ("digits", *ucr),
            activations=("selu", "relu", "relu_bn"),
            depths=(4,) if smoke else (8, 32),
            width=16 if smoke else 64,
            steps=20 if smoke else 1000,
            batch_size=32 if arg == "ucr" else 128,
            learning_rate=0.01,
            dropout_rate=0.0,
            seeds=1 if smoke else 3,
        )
    )
    return c
