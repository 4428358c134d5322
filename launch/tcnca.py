"""Launch a TCNCA experiment (Terzic et al., 2023): MQAR associative recall.

python -m launch.tcnca --config=research/tcnca/configs/recall.py[:smoke] [--workdir=DIR]
"""

from launch._common import main
from launch._report import report


def run(c, workdir=None) -> dict:
    """Run `c.experiment`; returns {experiment name: rows} (also printed and saved)."""
    from research.tcnca.model import run as run_experiment

    results = {c.experiment: run_experiment(c)}
    report(results, workdir)
    return results


if __name__ == "__main__":
    main(run, "research/tcnca/configs/*.py", project="tcnca")
