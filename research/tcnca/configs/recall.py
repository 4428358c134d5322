"""MQAR associative recall (TCNCA, Terzic et al. 2023, sec. 4.3; MQAR from Zoology, Arora et
al. 2023): TCNCA (dilated TCN + chunked attention) vs MEGA-chunk (damped EMA by FFT + chunked
attention) vs chunked attention alone, same width and depth, over sequence lengths and
vocabulary sizes.

  python -m launch.tcnca --config=research/tcnca/configs/recall.py --workdir=workdirs/tcnca

Hardware: a shared 2-core CPU. Run time: see research/tcnca/README.md. Expected (paper, Fig. 3):
TCNCA on par with or better than MEGA at every length and vocabulary size.
`arg`: "long" for one setting (length 32, 8 keys) trained 1500 steps; "smoke" for a
seconds-long run.
"""

import ml_collections


def get_config(arg: str = ""):
    """The config; `arg="long"` trains one setting longer, `arg="smoke"` shrinks to seconds."""
    c = ml_collections.ConfigDict()
    c.experiment = "recall"
    c.task_options = {"num_pairs": 4}
    c.lengths = (32, 128)
    c.num_keys = (8, 32)
    c.recurrences = ("tcn", "ema", "none")
    # Chunks of 16: at length 32 the keys' chunk holds a third of the queries; beyond it, only
    # the recurrence carries the pairs across chunks.
    c.mixer = {"chunk_size": 16, "num_heads": 2, "kernel_size": 3, "num_layers": 4}
    c.dim = 32
    c.depth = 2
    c.batch_size = 16
    c.steps = 500
    c.learning_rate = 3e-3
    c.eval_batches = 8
    c.seed = 0
    if arg == "long":  # one setting trained 3x longer: does the gap hold once recall is learned?
        c.lengths, c.num_keys, c.steps = (32,), (8,), 1500
    elif arg == "smoke":
        c.task_options = {"num_pairs": 2}
        c.lengths, c.num_keys, c.recurrences = (16,), (4,), ("tcn",)  # EMA: tests/research
        c.mixer = {"chunk_size": 8, "num_heads": 2, "kernel_size": 3, "num_layers": 1}
        c.dim, c.depth, c.batch_size, c.steps, c.eval_batches = 16, 1, 8, 2, 1
    elif arg:
        raise ValueError(f"config arg {arg!r}: expected '', 'long' or 'smoke'")
    return c
