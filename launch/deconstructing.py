"""Forecast with recurrence / gating / attention toggled; see research/deconstructing/README.md.

  python launch/deconstructing.py \
      --config=research/deconstructing/configs/forecast.py:lorenz96,all \
      --workdir=workdirs/deconstructing/lorenz96
  (append ",matched" to the config argument for parameter-matched variants)
"""

import copy
import os

from absl import app, flags
from ml_collections import config_flags

from launch._report import report
from lib.train.loop import train_and_evaluate
from research.deconstructing.model import VARIANTS, build, count_params, model_width


def main(argv):
    del argv
    base = _CONFIG.value
    names = list(VARIANTS) if base.model.variant == "all" else [base.model.variant]
    rows = []
    for name in names:
        config = copy.deepcopy(base)
        config.model.variant = name
        parts = build(config)
        features = parts["model"].features
        dim, mlp_dim = model_width(config, features)
        m = config.model
        n_params = count_params(name, features, dim, m.depth, m.num_heads, mlp_dim)
        r = train_and_evaluate(config, os.path.join(_WORKDIR.value, name), **parts)
        mse, pers = float(r["test_loss"]), float(r["test_persistence_mse"])
        rows.append({"data": config.data.name, "variant": name, "dim": dim,
                     "mlp_dim": mlp_dim, "params": n_params, "test_mse": mse,
                     "persistence_mse": pers, "relative_mse": mse / pers})  # fmt: skip
        print(rows[-1], flush=True)
    report({f"deconstructing_{base.data.name}": rows}, _WORKDIR.value)


if __name__ == "__main__":
    # flags are defined only when run as a script, so tests can import several launch modules
    _CONFIG = config_flags.DEFINE_config_file(
        "config", None, "configs/forecast.py:<data>,<variant>"
    )
    _WORKDIR = flags.DEFINE_string("workdir", None, "output folder (one run folder per variant)")
    flags.mark_flags_as_required(["config", "workdir"])
    app.run(main)
