"""Launch a Mamba experiment (Gu & Dao, 2023): selective copying, induction heads, Shakespeare.

python -m launch.mamba --config=research/mamba/configs/selective_copying.py[:smoke] [--workdir=DIR]
"""

from launch._common import main
from launch._report import report


def run(c, workdir=None) -> dict:
    """Run `c.experiment`; returns {experiment name: rows} (also printed and saved)."""
    from research.mamba.model import run as run_experiment

    results = {c.experiment: run_experiment(c)}
    report(results, workdir)
    return results


if __name__ == "__main__":
    main(run, "research/mamba/configs/*.py", project="mamba")
