"""Train the Hierarchical Reasoning Model (or its baselines) on Sudoku or mazes; see
research/hrm/README.md.

  python launch/hrm.py --config=research/hrm/configs/puzzles.py:sudoku,all \
      --workdir=workdirs/hrm/sudoku [--config.train.num_steps=200]
"""

from launch._common import main
from launch._report import report


def run(config, workdir: str) -> list[dict]:
    """Train `config.model.kind` (each of the three for "all"); report a table of results."""
    from research.hrm.train import run as train

    kinds = ("hrm", "flat", "transformer") if config.model.kind == "all" else (config.model.kind,)
    rows = []
    for kind in kinds:
        config.model.kind = kind
        result = train(config)
        rows.append({"task": config.data.name, "model": kind, **result})
        print(rows[-1], flush=True)
    report({f"hrm_{config.data.name}": rows}, workdir)
    return rows


if __name__ == "__main__":
    main(
        run,
        "research/hrm/configs/puzzles.py:<task>,<model>",
        workdir_help="output folder for results.json / results.md",
        workdir_required=True,
        project="hrm",
    )
