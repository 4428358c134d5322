"""LMUFormer vs a Transformer on synthesized spoken keywords (`lib.data` spoken_keywords_mel:
the ten Speech Commands words spoken by espeak-ng voices, 98 frames x 40 log-mel bands).

Needs the data set, which needs Debian's espeak-ng (scripts/setup_data_packages.sh), then
`python -m lib.data prepare spoken_keywords_mel` (36 s). Command (both models; 86 s wall on a
loaded 2-core CPU, measured 2026-11-23):
    python -m launch.lmuformer --config=research/lmuformer/configs/keywords.py
Hardware: CPU. Expected: both models ~0.93 test accuracy on unseen voices (see README).
"""

from research.lmuformer.configs import psdigits


def get_config(arg: str | None = None):
    """`arg`: None (full run) or "smoke" (one epoch, tiny model)."""
    c = psdigits.get_config(arg)
    c.experiment = "keywords"
    c.data = "spoken_keywords_mel"
    c.models = ("lmuformer", "transformer")
    c.theta = 98.0  # the LMU window spans the whole 1 s utterance (98 frames)
    c.epochs = 1 if arg == "smoke" else 30
    c.batch_size = 32
    return c
