"""HMT (He et al., 2024) on character-level King James Bible: 8 segments of 64 characters.

  python -m lib.data prepare kjv_char        # needs the Debian package bible-kjv
  python -m launch.hmt --config=research/hmt/configs/kjv.py:all --workdir=workdirs/hmt

`arg` is "<variant>[,smoke|,long][,austen]" (`austen`: austen_char, needs r-cran-janeaustenr;
research/hmt/configs/austen.py is the same with `austen` set):
- `segment`: the backbone alone, each 64-character segment read independently (no memory);
- `sensory`: as `segment` plus the previous segment's last 16 embeddings (an ablation);
- `hmt`: HMT, the same backbone and segment length, 16 sensory embeddings, recall over 4 memories;
- `full`: the backbone with the whole 512-character context (an upper bound);
- `all`: `launch/hmt.py` runs the four in turn (`launch.train` takes one variant).

`long`: 3x the steps at a quarter of the step's cost: 1500 steps of 8 sequences x 4 segments
(256 characters), 3.1M training characters (the default: 4.1M in 500 steps); what a 2-core
CPU at load ~16 fits in ~25 minutes per corpus for hmt and segment (README "Longer runs").

Backbone: 2 pre-norm rotary-attention blocks of width 64. Hardware: a shared 2-core CPU at
load 10-17: 13-28 minutes per variant (500 steps), about 1.5 hours for `all`.
Expected (the paper's claim): hmt below segment in test bits/char, the gap largest on later
segments. Measured (research/hmt/README.md): segment 2.361, sensory 2.389, hmt 2.392 — not
reproduced at this scale;
`long` (1500 steps; Austen 3 seeds, KJV 2): HMT better or level on segments 1-3 in all five
runs (mean -0.022 bits/char) but worse on segment 0 in all five; overall better in 3 of 5
(mean -0.006) — partly reproduced.
"""

import ml_collections

from lib.train.config import base_config, parse_arg

SEGMENT_LEN = 64
NUM_SEGMENTS = 8
VARIANTS = {
    "segment": dict(segment_len=SEGMENT_LEN, num_memories=0, sensory_len=0),
    "sensory": dict(segment_len=SEGMENT_LEN, num_memories=0, sensory_len=16),
    "hmt": dict(segment_len=SEGMENT_LEN, num_memories=4, sensory_len=16),
    "full": dict(segment_len=SEGMENT_LEN * NUM_SEGMENTS, num_memories=0, sensory_len=0),
    "all": dict(segment_len=SEGMENT_LEN, num_memories=4, sensory_len=16),
}


def get_config(arg: str = "hmt") -> ml_collections.ConfigDict:
    """The config for `arg` (e.g. "hmt", "segment,smoke", "all,austen")."""
    words = parse_arg(
        arg,
        {"variant": (sorted(VARIANTS), "hmt")},
        ("smoke", "long", "austen"),
        exclusive=[("smoke", "long")],
    )
    variant, smoke = words["variant"], words["smoke"]

    c = base_config()
    c.project = "hmt"
    c.variant = variant
    c.model.dim = 64
    c.model.depth = 2
    c.model.num_heads = 4
    c.model.summary_len = 0  # 0: segment_len // 2
    c.model.summary_source = "previous"
    c.model.update(VARIANTS[variant])

    c.data.name = "austen_char" if words["austen"] else "kjv_char"
    c.data.data_dir = ""  # "": $BRAINSEQ_DATA_DIR or ~/.cache/brainseq/data
    c.data.segment_len = SEGMENT_LEN  # the reporting grid (bits per segment position)
    c.data.num_segments = NUM_SEGMENTS
    c.data.batch_size = 16
    c.data.eval_batches = 16

    c.train.num_steps = 500
    c.train.log_every = 50
    c.train.eval_every = 0
    c.train.eval_batches = 16
    c.train.checkpoint_every = 0
    c.train.plot = False
    c.optimizer.learning_rate = 3e-3
    c.optimizer.warmup_steps = 50
    c.optimizer.weight_decay = 0.01

    if words["long"]:
        c.data.num_segments = 4
        c.data.batch_size = 8
        c.train.num_steps = 1500
        c.train.log_every = 100
        c.optimizer.warmup_steps = 100
        if variant == "full":
            c.model.segment_len = SEGMENT_LEN * c.data.num_segments
    if smoke:
        c.model.dim = 16
        c.model.depth = 1
        c.model.num_heads = 2
        c.data.segment_len = 8
        c.data.num_segments = 3
        c.model.segment_len = 8 * (3 if variant == "full" else 1)
        c.model.sensory_len = min(c.model.sensory_len, 4)
        c.model.num_memories = min(c.model.num_memories, 2)
        c.data.batch_size = 8
        c.data.eval_batches = 2
        c.train.num_steps = 3
        c.train.log_every = 1
        c.train.eval_batches = 2
        c.optimizer.warmup_steps = 1
    return c
