"""Launch a GLA experiment (Yang et al., 2023): MQAR recall, Shakespeare.

python -m launch.gla --config=research/gla/configs/mqar.py[:smoke] [--workdir=DIR]
"""

from launch._common import main
from launch._report import report


def run(c, workdir=None) -> dict:
    """Run `c.experiment`; returns {experiment name: rows} (also printed and saved)."""
    from research.gla.model import run as run_experiment

    results = {c.experiment: run_experiment(c)}
    report(results, workdir)
    return results


if __name__ == "__main__":
    main(run, "research/gla/configs/*.py", project="gla")
