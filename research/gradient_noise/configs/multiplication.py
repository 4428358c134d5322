"""Annealed gradient noise on binary multiplication: success rate of a small Neural GPU over
random restarts, with and without noise (the paper's Neural GPU experiment, shrunk).

Operands of 1-5 bits (`lib.data` `algorithmic_multiplication`, 240 distinct training pairs,
64 held-out validation pairs; test: 6-bit operands), a 1-D Neural GPU of 2 ConvGRUs with 16
channels, Adam 3e-3 with gradient clipping at 1, 1000 steps of batch 16, 4 restarts per noise
level, all restarts of a level in one vmapped run. Success: whole-answer accuracy >= 90% on the
held-out validation pairs.

Full run (about 8 minutes on a loaded 2-core CPU):
  python -m launch.gradient_noise --config=research/gradient_noise/configs/multiplication.py \
      --workdir=/tmp/gradient_noise_mul
Smoke (seconds): `...multiplication.py:smoke`.

Measured (README): no restart reached 90% with or without noise (0/4 and 0/4).
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Args: `arg` = "smoke" for a seconds-long run, else None/"" for the full run."""
    smoke = arg == "smoke"
    return ml_collections.ConfigDict(
        dict(
            experiment="multiplication",
            etas=[0.0, 0.01],  # noise variance at step 0 (0 = no noise); gamma below
            gamma=0.55,
            train_max_len=3 if smoke else 5,
            test_max_len=4 if smoke else 6,
            num_train=8 if smoke else 240,
            num_test=8 if smoke else 64,
            channels=4 if smoke else 16,
            layers=2,
            step_ratio=0.5,
            steps=3 if smoke else 1000,
            batch_size=8 if smoke else 16,
            learning_rate=3e-3,
            clip_norm=1.0,
            seeds=2 if smoke else 4,
            success_accuracy=0.9,
        )
    )
