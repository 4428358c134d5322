"""Launch LMUFormer (Liu et al., 2024) studies: compare models (with the spiking twin), sweep
widths.

python -m launch.lmuformer --config=research/lmuformer/configs/psdigits.py[:smoke] --workdir=DIR
(configs: psdigits.py, sweep.py, psmnist.py, keywords.py[:sweep]). Every model in
`study.models` is one run of `launch.train` in `DIR/<variant>`, at every width in `study.dims`
when it is set (a parameters-vs-accuracy sweep); `DIR/results.json` and `results.md` hold the
table (mean/std/min/max over `--config.study.seeds='(0,1,2)'`). One model alone: `python -m launch.train --config=...`.
"""

from launch._common import main

KEYS = ("test_accuracy", "num_params", "spike_rate")


def variants(c) -> list[tuple[str, dict]]:
    """`(name, overrides)`: every model of `c.study.models`, at each width of `c.study.dims`
    (names like "lmuformer_d16") or at `c.model.dim` when `dims` is empty."""
    if c.study.dims:
        return [
            (f"{name}_d{dim}", {"model.name": name, "model.dim": int(dim)})
            for name in c.study.models
            for dim in c.study.dims
        ]
    return [(name, {"model.name": name}) for name in c.study.models]


def run(c, workdir: str) -> list[dict]:
    """Train every variant (at every seed of `c.study.seeds`, or the config's seed) through
    `launch.train.run`; returns the study's rows."""
    from launch.train import run as train_run
    from lib.train.study import run_study

    seeds = [int(s) for s in c.study.seeds] or None
    return run_study(
        c, workdir, variants=variants(c), run=train_run, seeds=seeds, keys=KEYS, name=c.data.name
    )


if __name__ == "__main__":
    main(run, "research/lmuformer/configs/*.py", project="lmuformer", workdir_required=True,
         workdir_help="the study's folder: one sub-folder per model, results.json / results.md")  # fmt: skip
