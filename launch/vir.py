"""Launch the ViR (Vision Retention Networks, Hatamizadeh et al., 2023) vs ViT study on images.

python -m launch.vir --config=research/vir/configs/{digits,mnist}.py[:smoke] --workdir=DIR
(`mnist.py:matched`: parameter-matched (ViR dim, ViT dim) pairs, see the config). Each model
is one run of `launch.train` in `DIR/<variant>`; `DIR/results.json` and `results.md` hold the
table. One model alone: `python -m launch.train --config=... --config.model.name=vit`.
Memory and speed vs resolution (forward only): `--config.study.memory=True`.
"""

from launch._common import main

KEYS = ("test_accuracy", "num_params")


def variants(c) -> list[tuple[str, dict]]:
    """`(name, overrides)`: every model in `c.study.models` at `c.model.dim`, or ViR and ViT
    at each (ViR dim, ViT dim) pair of `c.study.matched_dims` (e.g. "vir40", "vit48")."""
    if c.study.matched_dims:
        return [
            (f"{name}{dim}", {"model.name": name, "model.dim": int(dim)})
            for pair in c.study.matched_dims
            for name, dim in zip(("vir", "vit"), pair, strict=True)
        ]
    return [(name, {"model.name": name}) for name in c.study.models]


def run(c, workdir: str) -> list[dict]:
    """Train every variant (at every seed of `c.study.seeds`, or the config's seed) through
    `launch.train.run`; returns the study's rows. With `c.study.memory`, instead measure the
    compiled memory and forward time vs image size (`research.vir.memory.table`) into
    `DIR/results.json`."""
    from launch.train import run as train_run
    from lib.train.study import report, run_study

    if c.study.memory:
        from research.vir.memory import table

        rows = table()
        report({"memory": rows}, workdir)
        return rows

    seeds = [int(s) for s in c.study.seeds] or None
    return run_study(
        c, workdir, variants=variants(c), run=train_run, seeds=seeds, keys=KEYS, name=c.data.name
    )


if __name__ == "__main__":
    main(run, "research/vir/configs/*.py", project="vir", workdir_required=True,
         workdir_help="the study's folder: one sub-folder per model, results.json / results.md")  # fmt: skip
