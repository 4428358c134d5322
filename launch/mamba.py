"""Launch a Mamba study (Gu & Dao, 2023): selective copying, induction heads, Shakespeare.

  python -m launch.mamba --config=research/mamba/configs/selective_copying.py[:smoke] \
      --workdir=DIR [--config.study.mixers='("mamba", "s4d")'] [--config.study.seeds='(0, 1)']

Every mixer of `config.study.mixers` (and seed of `config.study.seeds`) is one run of
`launch.train.run` in `DIR/<mixer>[/seed<s>]` (`lib.train.study.run_study`), after a
curriculum's first phase when `config.curriculum.num_steps` > 0; `DIR/results.json` and
`results.md` hold the table. One model alone: `python -m launch.train --config=...`.
"""

import functools

from launch._common import main


def test_keys(config) -> tuple[str, ...]:
    """The final metrics a study summarizes over seeds: each test length's accuracy, or the
    test accuracy and bits per token."""
    lengths = config.data.test_lengths
    if lengths:
        return tuple(f"test_len{int(n)}_accuracy" for n in lengths)
    return ("test_accuracy", "test_bits_per_token")


def run(config, workdir: str) -> list[dict]:
    """The study over `config.study.mixers` (and `study.seeds`); one row per run."""
    from launch.train import run as run_one
    from lib.train.study import run_study
    from research.mamba.model import run_curriculum

    return run_study(
        config,
        workdir,
        variants=[(m, {"model.mixer": m}) for m in config.study.mixers],
        run=functools.partial(run_curriculum, run=run_one),
        seeds=tuple(config.study.seeds) or None,
        keys=test_keys(config),
        name=config.data.task,
    )


if __name__ == "__main__":
    main(run, "research/mamba/configs/*.py", project="mamba", workdir_required=True)
