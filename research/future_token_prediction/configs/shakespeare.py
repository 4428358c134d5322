"""Character-level Shakespeare: Future Token Prediction (FTP) against a GPT with the same encoder.

  python -m lib.data prepare shakespeare_char
  python -m launch.future_token_prediction \
      --config=research/future_token_prediction/configs/shakespeare.py \
      --workdir=workdirs/future_token_prediction

trains `gpt` then `ftp` (one `lib.train` run each, in `<workdir>/gpt` and `<workdir>/ftp`) and
prints the comparison. One model alone: `python -m launch.train
--config=research/future_token_prediction/configs/shakespeare.py:ftp --workdir=DIR`.

`arg`: comma-separated, optionally `gpt` or `ftp` (the model `launch.train` builds; the FTP
launcher trains both regardless) and `smoke` (a tiny model, a few steps, seconds on a CPU).

Hardware: a shared 2-core CPU (load 12-19). Run time: about 3 min (GPT) + 7-10 min (FTP).
Measured (two seeds, research/future_token_prediction/README.md): test bits/char GPT 2.80-2.86,
FTP 3.06-3.14; neighbour cosine of top-layer embeddings FTP 0.54-0.56, GPT 0.31-0.32.
"""

from lib.train.config import base_config, parse_arg

KINDS = ("gpt", "ftp")


def get_config(arg: str = ""):
    """The config for `arg` (e.g. "", "ftp", "gpt,smoke")."""
    words = parse_arg(arg, {"kind": (KINDS, "ftp")}, ("smoke",))
    smoke = words["smoke"]

    c = base_config()
    c.project = "future_token_prediction"
    c.models = KINDS  # what launch/future_token_prediction.py trains, in order
    # --config.seeds="(0,1,2)": the launcher's in-memory seed study instead (both models).
    c.seeds = ()
    m = c.model
    m.kind = words["kind"]
    m.dim = 64  # encoder width (same for both models)
    m.depth = 2  # encoder blocks
    m.num_heads = 4
    m.decoder_dim = 32  # FTP decoder width (it runs N slots at every position: keep it small)
    m.decoder_depth = 1  # FTP decoder blocks (self-attention, cross-attention, MLP)
    m.n_future = 4  # N: tokens t+1 .. t+N predicted from position t
    m.pseudo_len = 4  # P: vectors in the pseudo-sequence the decoder attends to
    m.future_decay = 1.0  # slot j's loss weight is future_decay ** j (1.0: uniform)
    m.lags = (1, 2, 4, 8, 16, 32)  # cosine similarity of h_t and h_{t+k}
    m.analysis_batches = 64  # held-out batches whose embeddings the end-of-run analysis uses
    m.rollout_cuts = (15, 31, 47)  # positions after which both models guess N tokens greedily

    d = c.data
    d.name = "shakespeare_char"
    d.data_dir = ""
    d.seq_len = 64
    d.batch_size = 16
    d.evaluate_test = True
    d.num_samples = 0
    d.sample_length = 0
    d.sample_prompt = ""

    c.train.num_steps = 800
    c.train.log_every = 50
    c.train.eval_every = 100
    c.train.eval_batches = 8
    c.train.checkpoint_every = 400
    c.optimizer.learning_rate = 3e-3
    c.optimizer.warmup_steps = 100
    c.optimizer.weight_decay = 0.01

    if smoke:
        m.dim, m.depth, m.num_heads, m.decoder_dim = 16, 1, 2, 16
        m.n_future, m.pseudo_len = 3, 2
        m.lags = (1, 2, 4)
        m.analysis_batches = 2
        m.rollout_cuts = (7, 20)
        d.seq_len, d.batch_size = 32, 8
        d.evaluate_test = False
        c.train.num_steps = 4
        c.train.log_every = 2
        c.train.eval_every = 2
        c.train.eval_batches = 2
        c.train.checkpoint_every = 2
        c.train.plot = False
        c.train.progress_bar = False
        c.optimizer.warmup_steps = 1
    return c
