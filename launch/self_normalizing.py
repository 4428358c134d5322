"""Launch the self-normalizing-network experiments (Klambauer et al. 2017).

python -m launch.self_normalizing --config=research/self_normalizing/configs/default.py[:smoke]
    [--workdir=DIR]
"""

from launch._common import main
from launch._report import report


def run(c, workdir=None) -> dict:
    """Run both experiments of config `c`; returns table name -> rows."""
    from research.self_normalizing import experiment

    results = {}
    if c.get("run_stats", True):
        results["activation_statistics"] = experiment.activation_statistics(**c.stats.to_dict())
    results["training"] = experiment.training_comparison(**c.train.to_dict())
    report(results, workdir)
    return results


if __name__ == "__main__":
    main(run, "research/self_normalizing/configs/*.py[:smoke]", project="self_normalizing")
