"""Launch the GRU-SVM vs GRU-softmax comparison (Agarap 2017).

python -m launch.gru_svm --config=research/gru_svm/configs/default.py[:smoke] [--workdir=DIR]
"""

from launch._common import main
from launch._report import report


def run(c, workdir=None) -> dict:
    """Train both heads over paired seeds; returns table name -> rows."""
    from research.gru_svm.experiment import compare_heads

    results = {"heads": compare_heads(**c.to_dict())}
    report(results, workdir)
    return results


if __name__ == "__main__":
    main(run, "research/gru_svm/configs/*.py[:smoke]", project="gru_svm")
