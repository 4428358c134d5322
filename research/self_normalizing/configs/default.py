"""Self-normalizing networks: activation statistics of a 32-layer MLP; deep SNN vs ReLU MLPs.

One model (a run with checkpoints, `lib.train.loop`; the SNN of depth 8 by default):
  python -m launch.train --config=research/self_normalizing/configs/default.py \
      --workdir=/tmp/snn_run [--config.model.activation=relu --config.model.depth=32]
The study (activation statistics, then every data set x depth x activation over seeds, all
seeds of a model at once in memory through lib.train.fit; 2-core CPU, about 10 minutes):
  python -m launch.self_normalizing --config=research/self_normalizing/configs/default.py \
      --workdir=/tmp/snn
Smoke (seconds): add `:smoke` to the config path.

Expected (see README): at init, every hidden layer of the 32-layer SELU/LeCun MLP has mean within
~0.05 of 0 and variance within ~0.1 of 1, while ReLU/LeCun's variance collapses (~1e-5 by layer
16) and ReLU/He's mean sits near 0.5; trained with plain SGD on sklearn digits, the 32-layer SNN
reaches at least the test accuracy of the ReLU and ReLU+BatchNorm MLPs of the same size.
"""

import ml_collections

from lib.train.config import base_config, parse_arg


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Args: `arg` = "smoke" (seconds), "ucr" (the UCR training comparison only), else the full
    run. UCR sets must be prepared first: `python -m lib.data prepare ucr_gunpoint` (and
    `ucr_italy_power_demand`, `ucr_arrowhead`)."""
    words = parse_arg(arg, flags=("smoke", "ucr"), exclusive=[("smoke", "ucr")])
    smoke, ucr_only = words["smoke"], words["ucr"]
    ucr = ("ucr:gunpoint", "ucr:italy_power_demand", "ucr:arrowhead")
    c = base_config()
    c.project = "self_normalizing"
    c.model = ml_collections.ConfigDict(
        dict(depth=4 if smoke else 8, width=16 if smoke else 64, activation="selu",
             dropout_rate=0.0)
    )  # fmt: skip
    # "digits" (sklearn) or "ucr:<name>" (a prepared lib.data UCR set).
    c.data = ml_collections.ConfigDict(dict(name="digits", batch_size=32 if ucr_only else 128))
    # Plain SGD at a constant learning rate (the paper's comparison: no momentum, no clipping).
    c.optimizer.update(name="sgd", learning_rate=0.01, schedule="constant", warmup_steps=0,
                       weight_decay=0.0, grad_clip_norm=0.0)  # fmt: skip
    c.train.update(num_steps=20 if smoke else 1000, log_every=10 if smoke else 100,
                   eval_every=0, checkpoint_every=0)  # fmt: skip
    c.stats = ml_collections.ConfigDict(
        dict(
            run=not ucr_only,
            activations=("selu", "relu", "relu_bn", "relu_lecun"),
            depth=4 if smoke else 32,
            width=32 if smoke else 256,
            in_dim=64,
            batch=64 if smoke else 1024,
            seeds=1 if smoke else 5,
        )
    )
    # The training study: every data set x depth x activation, `seeds` seeds each.
    c.study = ml_collections.ConfigDict(
        dict(
            datasets=("digits",) if smoke else ucr if ucr_only else ("digits", *ucr),
            activations=("selu", "relu", "relu_bn"),
            depths=(4,) if smoke else (8, 32),
            seeds=1 if smoke else 3,
        )
    )
    return c
