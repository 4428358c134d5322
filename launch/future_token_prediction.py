"""Launch the Future Token Prediction experiment (Walker, 2024): GPT vs FTP on Shakespeare.

python -m launch.future_token_prediction \
    --config=research/future_token_prediction/configs/shakespeare.py[:smoke] --workdir=DIR

Trains each model of `config.models` with `lib.train` into `DIR/<model>` (rerunning resumes),
then prints the tables and writes `DIR/results.json` and `DIR/results.md`.
With `--config.seeds="(0,1,...)"` it runs the seed study instead: both models from every seed,
trained at once in memory (`experiment.seed_study`, no checkpoints), one smoothness row each.
"""

import tempfile

from launch._common import main
from launch._report import report


def run(c, workdir=None) -> dict:
    """Train and compare; returns {table name: rows} (also printed, and saved in `workdir`)."""
    from research.future_token_prediction.experiment import run as run_experiment
    from research.future_token_prediction.experiment import seed_study

    workdir = workdir or tempfile.mkdtemp(prefix="ftp_")
    if c.get("seeds"):
        results = {"seed_study": seed_study(c, [int(s) for s in c.seeds])}
    else:
        results = run_experiment(c, workdir)
    report(results, workdir)
    return results


if __name__ == "__main__":
    main(
        run,
        "research/future_token_prediction/configs/shakespeare.py[:arg]",
        workdir_help="run folders and results (default: a temp dir)",
        project="future_token_prediction",
    )
