"""MQAR associative recall (TCNCA, Terzic et al. 2023, sec. 4.3; MQAR from Zoology, Arora et
al. 2023): TCNCA (dilated TCN + chunked attention) vs MEGA-chunk (damped EMA by FFT + chunked
attention) vs chunked attention alone, same width and depth, over sequence lengths and
vocabulary sizes.

  python -m launch.tcnca --config=research/tcnca/configs/recall.py --workdir=workdirs/tcnca
  python -m launch.train --config=research/tcnca/configs/recall.py --workdir=DIR   (one run)

Width 32, 2 blocks, 2 heads, chunks of 16; 500 steps x 16, AdamW lr 3e-3 (weight decay 0.1,
clipping at 1, warmup over a tenth of the steps, cosine decay to a tenth), 8 test batches.
The study (`launch.tcnca`) runs every recurrence of `study.recurrences` at every length of
`study.lengths` and every vocabulary `study.num_keys` (keys and values each from that many
tokens), each in `DIR/<recurrence>_len<L>_keys<K>`.

Hardware: a shared 2-core CPU. Run time: see research/tcnca/README.md. Expected (paper, Fig. 3):
TCNCA on par with or better than MEGA at every length and vocabulary size.
`arg`: "long" for one setting (length 32, 8 keys) trained 1500 steps; "smoke" for a
seconds-long run.
"""

import ml_collections

from lib.train.config import base_config


def get_config(arg: str = ""):
    """The config; `arg="long"` trains one setting longer, `arg="smoke"` shrinks to seconds."""
    if arg not in ("", "long", "smoke"):
        raise ValueError(f"config arg {arg!r}: expected '', 'long' or 'smoke'")
    c = base_config()
    c.project = "tcnca"
    c.model.recurrence = "tcn"  # "tcn" (TCNCA), "ema" (MEGA-chunk) or "none"
    # Chunks of 16: at length 32 the keys' chunk holds a third of the queries; beyond it, only
    # the recurrence carries the pairs across chunks.
    c.model.mixer = {"chunk_size": 16, "num_heads": 2, "kernel_size": 3, "num_layers": 4}
    c.model.dim = 32
    c.model.depth = 2
    c.data.task = "mqar"
    c.data.options = {"seq_len": 32, "num_pairs": 4, "num_keys": 8, "num_values": 8}
    c.data.batch_size = 16
    c.data.eval_batches = 2  # validation batches per evaluation (the curves)
    c.data.test_batches = 8
    c.study = ml_collections.ConfigDict()
    c.study.recurrences = ("tcn", "ema", "none")
    c.study.lengths = (32, 128)
    c.study.num_keys = (8, 32)
    c.study.seeds = ()
    c.train.num_steps = 500
    c.train.log_every = 50
    c.train.eval_every = 100
    c.train.eval_batches = 0  # the whole (finite) evaluation set
    c.train.checkpoint_every = 250
    c.optimizer.name = "adamw"
    c.optimizer.learning_rate = 3e-3
    c.optimizer.schedule = "warmup_cosine"
    c.optimizer.warmup_steps = c.train.get_ref("num_steps") // 10
    c.optimizer.end_learning_rate_factor = 0.1
    c.optimizer.weight_decay = 0.1
    c.optimizer.grad_clip_norm = 1.0
    if arg == "long":  # one setting trained 3x longer: does the gap hold once recall is learned?
        c.study.lengths, c.study.num_keys, c.train.num_steps = (32,), (8,), 1500
    elif arg == "smoke":
        c.data.options = {"seq_len": 16, "num_pairs": 2, "num_keys": 4, "num_values": 4}
        c.study.lengths, c.study.num_keys, c.study.recurrences = (16,), (4,), ("tcn",)
        c.model.mixer = {"chunk_size": 8, "num_heads": 2, "kernel_size": 3, "num_layers": 1}
        c.model.dim, c.model.depth, c.data.batch_size = 16, 1, 8
        c.data.eval_batches, c.data.test_batches = 1, 1
        c.train.num_steps, c.train.log_every, c.train.eval_every = 3, 1, 2
        c.train.checkpoint_every = 0
    return c
