"""Train the Hierarchical Reasoning Model (or its baselines) on Sudoku or mazes; see
research/hrm/README.md.

  python launch/hrm.py --config=research/hrm/configs/puzzles.py:sudoku,all \
      --workdir=workdirs/hrm/sudoku [--config.train.num_steps=200]
"""

from absl import app, flags
from ml_collections import config_flags

from launch._report import report
from research.hrm.train import run


def main(argv):
    del argv
    config = _CONFIG.value
    kinds = ("hrm", "flat", "transformer") if config.model.kind == "all" else (config.model.kind,)
    rows = []
    for kind in kinds:
        config.model.kind = kind
        result = run(config)
        rows.append({"task": config.data.name, "model": kind, **result})
        print(rows[-1], flush=True)
    report({f"hrm_{config.data.name}": rows}, _WORKDIR.value)


if __name__ == "__main__":
    # flags are defined only when run as a script, so tests can import several launch modules
    _CONFIG = config_flags.DEFINE_config_file("config", None, "configs/puzzles.py:<task>,<model>")
    _WORKDIR = flags.DEFINE_string("workdir", None, "output folder for results.json / results.md")
    flags.mark_flags_as_required(["config", "workdir"])
    app.run(main)
