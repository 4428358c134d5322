"""Launch the annealed-gradient-noise experiments (Neelakantan et al. 2015).

python -m launch.gradient_noise --config=research/gradient_noise/configs/default.py[:smoke]
    [--workdir=DIR]                                  (20-layer ReLU net from a poor init)
python -m launch.gradient_noise --config=research/gradient_noise/configs/multiplication.py[:smoke]
    [--workdir=DIR]                                  (binary multiplication, Neural GPU)
One model as a run: python -m launch.train --config=research/gradient_noise/configs/<c>.py
"""

from launch._common import main


def run(c, workdir=None) -> dict:
    """The config's restart sweep through `lib.train.fit` (outputs under
    `workdir/<variant>/seed<s>/`); returns table name -> rows."""
    from lib.train.fit import fit_study
    from research.gradient_noise import experiment

    kind = c.model.kind
    table = experiment.multiplication_table if kind == "neural_gpu" else experiment.sweep_table
    name = "multiplication" if kind == "neural_gpu" else "noise_sweep"
    rows = fit_study(workdir, experiment.variants(c), experiment.seeds(c),
                     log_every=c.train.log_every, tables=lambda rows: {name: table(c, rows)})  # fmt: skip
    return {"runs": rows, name: table(c, rows)}


if __name__ == "__main__":
    main(run, "research/gradient_noise/configs/*.py[:smoke]", project="gradient_noise")
