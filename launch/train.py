"""Train any project: flags -> config -> the project's model and data -> lib.train.

  python -m launch.train --config=research/baselines/configs/shakespeare.py:transformer \
      --workdir=/tmp/run --config.train.num_steps=200 --config.model.dim=64
  python -m launch.train --list                       (every project's configs and their arg)
  python -m launch.train --config=...:smoke --dry_run (the resolved config, nothing trained)

`config.project` names the folder `research/<project>` whose `model.build(config)` returns
either `(model, loss_fn, train_data, eval_data)` or a dict of keyword arguments for
`lib.train.loop.train_and_evaluate` (`model`, `loss_fn`, `train_data`, `eval_data`, and
optionally `test_data`, `init_batch`, `on_end`). Run the same command again to resume.
Flags may also come from a file: `--flagfile=run.flags` (one flag per line, overrides too).
On many hosts, run it once per host (see launch/slurm_gpu.sh and launch/tpu_vm.sh).
"""

import importlib
import signal
import sys

from launch._common import main


def build_and_train(config, workdir: str) -> dict:
    """Build the project named by `config.project` and train it; returns the final metrics."""
    from lib.train.loop import train_and_evaluate

    if not config.project:
        raise ValueError("config.project is empty: set it to a folder name under research/")
    project = importlib.import_module(f"research.{config.project}.model")
    built = project.build(config)
    if not isinstance(built, dict):
        model, loss_fn, train_data, eval_data = built
        built = dict(model=model, loss_fn=loss_fn, train_data=train_data, eval_data=eval_data)
    return train_and_evaluate(config, workdir, **built)


def run(config, workdir: str) -> dict:
    """`build_and_train` on every host, then print the final metrics; an interrupted run
    (SIGTERM/SIGINT, checkpoint saved) exits with 128 + the signal number."""
    from lib.train.sharding import maybe_initialize_distributed

    maybe_initialize_distributed()  # before anything touches the devices
    result = build_and_train(config, workdir)
    for split in ("train", "eval", "test"):
        keys = ("loss", "bits_per_token", "accuracy")
        shown = [f"{k}={result[f'{split}_{k}']:.4f}" for k in keys if f"{split}_{k}" in result]
        if shown:
            print(f"{split:5s} (step {result['step']}): " + "  ".join(shown))
    if "test_bits_per_token" in result:
        print(f"test loss: {result['test_bits_per_token']:.4f} bits per token (character)")
    if "samples_file" in result:
        print(f"samples of generated text: {result['samples_file']}")
    if "interrupted" in result:
        sys.exit(128 + signal.Signals[result["interrupted"]].value)
    return result


if __name__ == "__main__":
    main(
        run,
        "path/to/config.py[:arg] (--list shows them); override fields with --config.a.b=value",
        workdir_help="output directory (resumes if it has checkpoints)",
        workdir_required=True,
    )
