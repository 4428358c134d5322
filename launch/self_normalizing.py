"""Launch the self-normalizing-network experiments (Klambauer et al. 2017).

python -m launch.self_normalizing --config=research/self_normalizing/configs/default.py[:smoke]
    [--workdir=DIR]
"""

from absl import app, flags
from ml_collections import config_flags

from launch._report import report
from research.self_normalizing import experiment


def run(c, workdir=None) -> dict:
    """Run both experiments of config `c`; returns table name -> rows."""
    results = {}
    if c.get("run_stats", True):
        results["activation_statistics"] = experiment.activation_statistics(**c.stats.to_dict())
    results["training"] = experiment.training_comparison(**c.train.to_dict())
    report(results, workdir)
    return results


def main():
    """Command-line entry: flags are defined here, not at import, so tests (and other scripts)
    can import `run` without absl flag clashes."""
    config = config_flags.DEFINE_config_file(
        "config", None, "research/self_normalizing/configs/*.py"
    )
    workdir = flags.DEFINE_string("workdir", None, "where results.json / results.md go")
    flags.mark_flags_as_required(["config"])
    app.run(lambda argv: run(config.value, workdir.value))


if __name__ == "__main__":
    main()
