"""ViR vs ViT on sklearn's 8x8 digits (1257 train / 360 test images, 16 patches of 2x2).

Command (full small-scale run, both models, ~1-2 min on a shared 2-core CPU):
    python -m launch.vir --config=research/vir/configs/digits.py
    python -m launch.vir --config=research/vir/configs/digits.py:smoke
Hardware: CPU. Expected: ViR test accuracy ~0.95 or more, ViT similar (see README); the smoke
run (117 steps of a tiny ViR, seconds) reaches ~0.65 (tests/research/test_vir.py asserts > 0.4).
"""

import ml_collections


def get_config(arg: str | None = None):
    """`arg`: None (full run) or "smoke" (3 epochs of batch 32, tiny model: learns, in seconds)."""
    c = ml_collections.ConfigDict()
    c.data, c.image_size = "digits", 8
    c.models = ("vir", "vit")
    c.model = "vir"
    c.method = "parallel"
    c.dim, c.depth, c.num_heads, c.patch = 64, 2, 4, 2
    c.epochs, c.batch_size, c.lr, c.weight_decay, c.seed = 20, 64, 3e-3, 0.05, 0
    if arg == "smoke":
        c.dim, c.depth, c.num_heads, c.epochs, c.batch_size = 16, 1, 2, 3, 32
    elif arg not in (None, ""):
        raise ValueError(f"unknown config arg {arg!r}; expected None or 'smoke'")
    return c
