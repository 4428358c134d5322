"""Launch the self-normalizing-network experiments (Klambauer et al. 2017).

python -m launch.self_normalizing --config=research/self_normalizing/configs/default.py[:smoke]
    [--workdir=DIR]
One model as a run: python -m launch.train --config=research/self_normalizing/configs/default.py
"""

from launch._common import main


def run(c, workdir=None) -> dict:
    """The activation statistics (`c.stats.run`) and the training study of config `c` (every
    data set x depth x activation of `c.study`, each model's seeds vmapped through
    `lib.train.fit`, outputs under `workdir/<model>/seed<s>/`); returns table name -> rows."""
    from lib.train.fit import fit_study
    from research.self_normalizing import experiment

    tables = {}
    if c.stats.run:
        stats = {k: v for k, v in c.stats.to_dict().items() if k != "run"}
        tables["activation_statistics"] = experiment.activation_statistics(**stats)
    rows = fit_study(workdir, experiment.training_variants(c), range(c.study.seeds),
                     keys=("test_accuracy",), log_every=c.train.log_every,
                     tables=lambda rows: {**tables, "training": experiment.training_table(rows)})  # fmt: skip
    return {**tables, "runs": rows, "training": experiment.training_table(rows)}


if __name__ == "__main__":
    main(run, "research/self_normalizing/configs/*.py[:smoke]", project="self_normalizing")
