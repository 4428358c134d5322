"""Train a Universal Transformer (or its baselines) on an algorithmic task; see
research/universal_transformer/README.md.

  python launch/universal_transformer.py \
      --config=research/universal_transformer/configs/algorithmic.py:reverse,ut \
      --workdir=workdirs/ut/reverse_ut [--config.train.num_steps=500]
"""

import json

from launch._common import main


def run(config, workdir: str) -> dict:
    """Train and test one model; print the eval/test metrics; returns the final metrics."""
    from lib.train.loop import train_and_evaluate
    from research.universal_transformer.model import build

    result = train_and_evaluate(config, workdir, **build(config))
    keys = [
        k for k in result if k.startswith(("eval_", "test_")) and not isinstance(result[k], list)
    ]
    print(json.dumps({k: round(float(result[k]), 4) for k in sorted(keys)}, indent=1))
    if "test_halting_by_position" in result:
        print("mean ACT steps by position (test):", result["test_halting_by_position"])
    return result


if __name__ == "__main__":
    main(
        run,
        "research/universal_transformer/configs/algorithmic.py:<task>,<model>",
        workdir_help="output folder (resumes if it holds a checkpoint)",
        workdir_required=True,
        project="universal_transformer",
    )
