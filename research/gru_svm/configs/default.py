"""GRU-SVM vs GRU-softmax on sklearn digits read as 8-step sequences of 8-pixel rows.

The paper's data (Kyoto University 2013 honeypot traffic) needs the internet and is not in this
codebase; digits-as-sequences is the offline stand-in (see README).

One model (a run with checkpoints, `lib.train.loop`; `model.head` is "softmax" or "svm"):
  python -m launch.train --config=research/gru_svm/configs/default.py --workdir=/tmp/gru_run \
      [--config.model.head=svm]
The study (both heads over 10 paired seeds through lib.train.fit; 2-core CPU, about 5 minutes):
  python -m launch.gru_svm --config=research/gru_svm/configs/default.py --workdir=/tmp/gru_svm
Smoke (seconds): add `:smoke` to the config path.

Expected (see README): both heads reach ~96-98% test accuracy; the SVM-minus-softmax difference
is a point or two, nowhere near the paper's ~13 points.
"""

import ml_collections

from lib.train.config import base_config, parse_arg


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Args: `arg` = "smoke" for a seconds-long run, else None/"" for the full run."""
    smoke = parse_arg(arg, flags=("smoke",))["smoke"]
    c = base_config()
    c.project = "gru_svm"
    c.model = ml_collections.ConfigDict(
        dict(head="softmax", hidden=16 if smoke else 64, dropout_rate=0.0, svm_c=1.0,
             svm_l2=1e-3)
    )  # fmt: skip
    c.data = ml_collections.ConfigDict(dict(name="digits", batch_size=64))
    # Adam at a constant learning rate, no clipping or weight decay (the old recipe).
    c.optimizer.update(name="adam", learning_rate=3e-3, schedule="constant", warmup_steps=0,
                       weight_decay=0.0, grad_clip_norm=0.0)  # fmt: skip
    c.train.update(num_steps=20 if smoke else 600, log_every=10 if smoke else 100,
                   eval_every=0, checkpoint_every=0)  # fmt: skip
    # The study: both heads from the same seeds (paired: same init of the shared layers and
    # the same batch order).
    c.study = ml_collections.ConfigDict(dict(heads=("softmax", "svm"), seeds=2 if smoke else 10))
    return c
