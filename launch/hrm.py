"""Train the Hierarchical Reasoning Model and its baselines (flat recurrence, Transformer) on
Sudoku or mazes as a study; see research/hrm/README.md.

  python -m launch.hrm --config=research/hrm/configs/puzzles.py:sudoku,all \
      --workdir=workdirs/hrm/sudoku [--config.train.num_steps=200]

`model.kind` "all" trains the three kinds, each one run of `launch.train` in `DIR/<kind>`;
`DIR/results.json` and `results.md` hold the table. One kind alone:
`python -m launch.train --config=research/hrm/configs/puzzles.py:sudoku,hrm --workdir=DIR`.
"""

from launch._common import main

KINDS = ("hrm", "flat", "transformer")
KEYS = ("test_cell_accuracy", "test_exact_accuracy", "test_act_exact_accuracy")


def variants(config) -> list[tuple[str, dict]]:
    """`(kind, overrides)` for `config.model.kind` (each of the three for "all"). The schedule
    decays over the run's updates: `num_steps x segments`, one segment for the Transformer."""
    kinds = KINDS if config.model.kind == "all" else (config.model.kind,)
    steps, segments = config.train.num_steps, config.model.segments
    return [
        (kind, {"model.kind": kind,
                "optimizer.decay_steps": steps * (1 if kind == "transformer" else segments)})
        for kind in kinds
    ]  # fmt: skip


def run(config, workdir: str) -> list[dict]:
    """Train every kind through `launch.train.run`; returns the study's rows."""
    from launch.train import run as train_run
    from lib.train.study import run_study

    return run_study(config, workdir, variants=variants(config), run=train_run, keys=KEYS,
                     name=f"hrm_{config.data.name}")  # fmt: skip


if __name__ == "__main__":
    main(
        run,
        "research/hrm/configs/puzzles.py:<task>,<model>",
        workdir_help="the study's folder: one sub-folder per model, results.json / results.md",
        workdir_required=True,
        project="hrm",
    )
