"""Launch the GRU-SVM vs GRU-softmax comparison (Agarap 2017).

python -m launch.gru_svm --config=research/gru_svm/configs/default.py[:smoke] [--workdir=DIR]
"""

from absl import app, flags
from ml_collections import config_flags

from launch._report import report
from research.gru_svm.experiment import compare_heads


def run(c, workdir=None) -> dict:
    """Train both heads over paired seeds; returns table name -> rows."""
    results = {"heads": compare_heads(**c.to_dict())}
    report(results, workdir)
    return results


def main():
    """Command-line entry: flags are defined here, not at import, so tests (and other scripts)
    can import `run` without absl flag clashes."""
    config = config_flags.DEFINE_config_file("config", None, "research/gru_svm/configs/*.py")
    workdir = flags.DEFINE_string("workdir", None, "where results.json / results.md go")
    flags.mark_flags_as_required(["config"])
    app.run(lambda argv: run(config.value, workdir.value))


if __name__ == "__main__":
    main()
