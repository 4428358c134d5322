"""Train a Universal Transformer (or its baselines) on an algorithmic task; see
research/universal_transformer/README.md.

  python launch/universal_transformer.py \
      --config=research/universal_transformer/configs/algorithmic.py:reverse,ut \
      --workdir=workdirs/ut/reverse_ut [--config.train.num_steps=500]
"""

import json

from absl import app, flags
from ml_collections import config_flags

from lib.train.loop import train_and_evaluate
from research.universal_transformer.model import build


def main(argv):
    del argv
    config = _CONFIG.value
    parts = build(config)
    result = train_and_evaluate(config, _WORKDIR.value, **parts)
    keys = [
        k for k in result if k.startswith(("eval_", "test_")) and not isinstance(result[k], list)
    ]
    print(json.dumps({k: round(float(result[k]), 4) for k in sorted(keys)}, indent=1))
    if "test_halting_by_position" in result:
        print("mean ACT steps by position (test):", result["test_halting_by_position"])


if __name__ == "__main__":
    # flags are defined only when run as a script, so tests can import several launch modules
    _CONFIG = config_flags.DEFINE_config_file(
        "config", None, "configs/algorithmic.py:<task>,<model>"
    )
    _WORKDIR = flags.DEFINE_string(
        "workdir", None, "output folder (resumes if it holds a checkpoint)"
    )
    flags.mark_flags_as_required(["config", "workdir"])
    app.run(main)
