"""Launch the GRU-SVM vs GRU-softmax comparison (Agarap 2017).

python -m launch.gru_svm --config=research/gru_svm/configs/default.py[:smoke] [--workdir=DIR]
One model as a run: python -m launch.train --config=research/gru_svm/configs/default.py
"""

from launch._common import main


def run(c, workdir=None) -> dict:
    """Train both heads over paired seeds (`c.study`) through `lib.train.fit`, outputs under
    `workdir/<head>/seed<s>/`; returns table name -> rows."""
    from lib.train.fit import fit_study
    from research.gru_svm import experiment

    rows = fit_study(workdir, experiment.head_variants(c), range(c.study.seeds),
                     keys=("test_accuracy",), vectorize=False, log_every=c.train.log_every,
                     tables=lambda rows: {"heads": experiment.heads_table(rows)})  # fmt: skip
    return {"runs": rows, "heads": experiment.heads_table(rows)}


if __name__ == "__main__":
    main(run, "research/gru_svm/configs/*.py[:smoke]", project="gru_svm")
