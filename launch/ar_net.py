"""Launch the AR-Net experiments (Triebe et al. 2019); see research/ar_net/README.md.

python -m launch.ar_net --config=research/ar_net/configs/default.py[:smoke] [--workdir=DIR]
One model as a run: python -m launch.train --config=research/ar_net/configs/default.py
"""

from launch._common import main


def run(c, workdir=None) -> dict:
    """The fit-time table, then recovery and order selection through `lib.train.fit` (every
    setting's processes at once, outputs under `workdir/<setting>/seed<s>/`); returns table
    name -> rows."""
    from lib.train.fit import fit_study
    from research.ar_net import experiment

    timing = experiment.fit_time(c)
    out = {}

    def tables(rows):
        out.update(experiment.tables(c, rows), fit_time=timing)
        return out

    rows = fit_study(workdir, experiment.variants(c), range(c.study.seeds), keep_variables=True,
                     log_every=c.train.log_every, tables=tables)  # fmt: skip
    return {"runs": [{k: v for k, v in r.items() if k != "variables"} for r in rows], **out}


if __name__ == "__main__":
    main(run, "research/ar_net/configs/*.py[:smoke]", project="ar_net")
