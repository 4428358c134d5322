"""Launch a GLA experiment (Yang et al., 2023): MQAR recall, Shakespeare.

python -m launch.gla --config=research/gla/configs/mqar.py[:smoke] [--workdir=DIR]
"""

from absl import app, flags
from ml_collections import config_flags

from launch._report import report


def run(c, workdir=None) -> dict:
    """Run `c.experiment`; returns {experiment name: rows} (also printed and saved)."""
    from research.gla.model import run as run_experiment

    results = {c.experiment: run_experiment(c)}
    report(results, workdir)
    return results


def main(argv):
    del argv
    run(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
    # flags are defined only when run as a script, so tests can import several launch modules
    _CONFIG = config_flags.DEFINE_config_file("config", None, "research/gla/configs/*.py")
    _WORKDIR = flags.DEFINE_string("workdir", None, "where results.json / results.md go")
    flags.mark_flags_as_required(["config"])
    app.run(main)
