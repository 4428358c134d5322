"""LMUFormer vs a Transformer on synthesized spoken keywords (`lib.data` spoken_keywords_mel:
the ten Speech Commands words spoken by espeak-ng voices, 98 frames x 40 log-mel bands).

Needs the data set, which needs Debian's espeak-ng (scripts/setup_data_packages.sh), then
`python -m lib.data prepare spoken_keywords_mel` (36 s). Command (both models; 86 s wall on a
loaded 2-core CPU, measured 2026-11-23):
    python -m launch.lmuformer --config=research/lmuformer/configs/keywords.py --workdir=/tmp/kw
Parameters vs accuracy, both models at widths 8, 16, 32 and 64 (`sweep`; see the README for
the measured wall time):
    python -m launch.lmuformer --config=research/lmuformer/configs/keywords.py:sweep --workdir=...
Recipe: 30 epochs of batch 32 over the 420 training utterances (390 steps), lr 3e-3.
Hardware: CPU. Expected: both models ~0.93 test accuracy on unseen voices at width 32 (see
README).
"""

from lib.train.config import parse_arg
from research.lmuformer.configs import psdigits

_OPTIONS = ("smoke", "sweep")
KEYWORDS_TRAIN = 420  # spoken_keywords_mel's training split (lib/data/README.md)


def get_config(arg: str | None = None):
    """`arg`: comma-separated options from "smoke" (one epoch, tiny model) and "sweep" (both
    models at every width in `study.dims`)."""
    opts = parse_arg(arg, flags=_OPTIONS)
    smoke = opts["smoke"]
    c = psdigits.get_config("smoke" if smoke else None)
    c.data.name = "spoken_keywords_mel"
    c.data.train_examples = KEYWORDS_TRAIN
    c.study.models = ("lmuformer", "transformer")
    c.model.theta = 98.0  # the LMU window spans the whole 1 s utterance (98 frames)
    c.data.epochs = 1 if smoke else 30
    c.data.batch_size = 32
    if opts["sweep"]:
        c.study.dims = (8, 16) if smoke else (8, 16, 32, 64)
    return c
