"""Annealed gradient noise on binary multiplication: success counts of a small Neural GPU over
random restarts, with and without noise (the paper's Neural GPU experiment, shrunk).

Operands of 1-4 bits (`lib.data` `algorithmic_multiplication` generated in memory, 64 distinct
training pairs, 16 held-out validation pairs; test: 5-bit operands), a 1-D Neural GPU of 2
ConvGRUs with 16 channels, Adam 1e-2 with gradient clipping at 1, 2000 steps of batch 16, 10
restarts per noise level (vmapped). Success (`success_accuracy`): whole-answer accuracy >= 90%,
counted on the training pairs (fit) and on the held-out pairs (learned).

One model (a run with checkpoints, `lib.train.loop`):
  python -m launch.train --config=research/gradient_noise/configs/multiplication.py \
      --workdir=/tmp/gn_mul_run [--config.optimizer.gradient_noise_eta=0.0001]
The restart sweep (about 10 minutes on a loaded 2-core CPU):
  python -m launch.gradient_noise --config=research/gradient_noise/configs/multiplication.py \
      --workdir=/tmp/gradient_noise_mul [--config.study.etas='(0.0001, 0.001)']
Smoke (seconds): `...multiplication.py:smoke`.

Measured (README): fit 8/10 without noise, 5/10 with eta = 0.01 (and 16/20 vs 16/20 at
eta = 0.0001 over seeds 0-19); learned (held-out) 0 everywhere.
"""

import ml_collections

from lib.train.config import base_config, parse_arg


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Args: `arg` = "smoke" for a seconds-long run, else None/"" for the full run."""
    smoke = parse_arg(arg, flags=("smoke",))["smoke"]
    c = base_config()
    c.project = "gradient_noise"
    c.model = ml_collections.ConfigDict(
        dict(kind="neural_gpu", channels=4 if smoke else 16, layers=2, step_ratio=0.5)
    )
    c.data = ml_collections.ConfigDict(
        dict(name="algorithmic_multiplication", train_max_len=3 if smoke else 4,
             test_max_len=4 if smoke else 5, num_train=8 if smoke else 64,
             num_test=8 if smoke else 16, batch_size=8 if smoke else 16)
    )  # fmt: skip
    c.optimizer.update(name="adam", learning_rate=1e-2, schedule="constant", warmup_steps=0,
                       weight_decay=0.0, grad_clip_norm=1.0, gradient_noise_eta=0.0,
                       gradient_noise_gamma=0.55)  # fmt: skip
    c.train.update(num_steps=3 if smoke else 2000, log_every=3 if smoke else 200,
                   eval_every=0, checkpoint_every=0)  # fmt: skip
    c.study = ml_collections.ConfigDict(
        dict(
            etas=(0.0, 0.01),  # noise variance at step 0 (0 = no noise)
            seeds=2 if smoke else 10,
            first_seed=0,
            success_accuracy=0.9,
        )
    )
    return c
