"""Launch a GLA study (Yang et al., 2023): MQAR recall, Shakespeare.

  python -m launch.gla --config=research/gla/configs/mqar.py[:smoke] --workdir=DIR \
      [--config.study.mixers='("gla", "retnet")'] [--config.study.seeds='(0, 1)']

Every mixer of `config.study.mixers` (and seed of `config.study.seeds`) is one run of
`launch.train.run` in `DIR/<mixer>[/seed<s>]` (`lib.train.study.run_study`); `DIR/results.json`
and `results.md` hold the table. One model alone: `python -m launch.train --config=...`.
"""

from launch._common import main


def run(config, workdir: str) -> list[dict]:
    """The study over `config.study.mixers` (and `study.seeds`); one row per run."""
    from launch.train import run as run_one
    from lib.train.study import run_study

    return run_study(
        config,
        workdir,
        variants=[(m, {"model.mixer": m}) for m in config.study.mixers],
        run=run_one,
        seeds=tuple(config.study.seeds) or None,
        keys=("test_accuracy", "test_bits_per_token"),
        name=config.data.task,
    )


if __name__ == "__main__":
    main(run, "research/gla/configs/*.py", project="gla", workdir_required=True)
