"""Launch the Future Token Prediction experiment (Walker, 2024): GPT vs FTP on Shakespeare.

python -m launch.future_token_prediction \
    --config=research/future_token_prediction/configs/shakespeare.py[:smoke] --workdir=DIR

Trains each model of `config.models` with `lib.train` into `DIR/<model>` (rerunning resumes),
then prints the tables and writes `DIR/results.json` and `DIR/results.md`.
With `--config.seeds="(0,1,...)"` it runs the seed study instead: both models from every seed,
trained at once in memory (`experiment.seed_study`, no checkpoints), one smoothness row each.
"""

import tempfile

from absl import app, flags, logging
from ml_collections import config_flags

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


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # orbax logs every file it writes at INFO
    run(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
    # flags are defined only when run as a script, so tests can import several launch modules
    _CONFIG = config_flags.DEFINE_config_file(
        "config", None, "research/future_token_prediction/configs/shakespeare.py[:arg]"
    )
    _WORKDIR = flags.DEFINE_string("workdir", None, "run folders and results (default: a temp dir)")
    flags.mark_flags_as_required(["config"])
    app.run(main)
