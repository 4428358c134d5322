"""GRU-SVM vs GRU-softmax on sklearn digits read as 8-step sequences of 8-pixel rows.

The paper's data (Kyoto University 2013 honeypot traffic) needs the internet and is not in this
codebase; digits-as-sequences is the offline stand-in (see README).

Full run (2-core CPU, about 5 minutes):
  python -m launch.gru_svm --config=research/gru_svm/configs/default.py --workdir=/tmp/gru_svm
Smoke (seconds):
  python -m launch.gru_svm --config=research/gru_svm/configs/default.py:smoke

Expected (see README): both heads reach ~96-98% test accuracy; the SVM-minus-softmax difference
is a point or two, nowhere near the paper's ~13 points.
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Args: `arg` = "smoke" for a seconds-long run, else None/"" for the full run."""
    smoke = arg == "smoke"
    return ml_collections.ConfigDict(
        dict(
            dataset="digits",
            hidden=16 if smoke else 64,
            dropout_rate=0.0,
            steps=20 if smoke else 600,
            batch_size=64,
            learning_rate=3e-3,
            svm_c=1.0,
            svm_l2=1e-3,
            seeds=2 if smoke else 10,
        )
    )
