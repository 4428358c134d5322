"""Train any project: flags -> config -> the project's model and data -> lib.train.

  python -m launch.train --config=research/baselines/configs/shakespeare.py:transformer \
      --workdir=/tmp/run --config.train.num_steps=200 --config.model.dim=64

`config.project` names the folder `research/<project>` whose `model.build(config)` returns
either `(model, loss_fn, train_data, eval_data)` or a dict of keyword arguments for
`lib.train.loop.train_and_evaluate` (`model`, `loss_fn`, `train_data`, `eval_data`, and
optionally `test_data`, `init_batch`, `on_end`). Run the same command again to resume.
On many hosts, run it once per host (see launch/slurm_gpu.sh and launch/tpu_vm.sh).
"""

import importlib
import signal
import sys

from absl import app, flags, logging

_OVERRIDES: list[str] = []


def parse_flags(argv):
    """absl flags, except `--config.a.b=value` overrides, which go to the config."""
    rest = [argv[0]]
    for arg in argv[1:]:
        (_OVERRIDES if arg.startswith("--config.") else rest).append(arg)
    return flags.FLAGS(rest)


def run(config, workdir: str) -> dict:
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


def main(argv):
    del argv
    from lib.train.config import load_config
    from lib.train.sharding import maybe_initialize_distributed

    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # orbax logs every file it writes at INFO
    maybe_initialize_distributed()  # before anything touches the devices
    try:
        config = load_config(_CONFIG.value, _OVERRIDES)
    except (KeyError, TypeError, ValueError, FileNotFoundError) as e:
        raise app.UsageError(e.args[0] if e.args else str(e)) from None
    result = run(config, _WORKDIR.value)
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


if __name__ == "__main__":
    # flags are defined only when run as a script, so tests can import several launch modules
    _CONFIG = flags.DEFINE_string("config", None, "path/to/config.py[:arg]")
    _WORKDIR = flags.DEFINE_string(
        "workdir", None, "output directory (resumes if it has checkpoints)"
    )
    flags.mark_flags_as_required(["config", "workdir"])
    app.run(main, flags_parser=parse_flags)
