"""Character-level Shakespeare language models: GRU, LSTM or a small causal Transformer.

  python -m lib.data prepare shakespeare_char
  python -m launch.train --config=research/baselines/configs/shakespeare.py:gru \
      --workdir=workdirs/shakespeare_gru

`arg` is a comma-separated list: the model (`gru`, `lstm`, `transformer`; default transformer)
and optionally `smoke` (a few steps of a tiny model, seconds on a CPU).

`gru` is the README's main job (scripts/main.sh): one GRU layer of width 256, 800 steps of 32
sequences of 128 characters, 211 CPU-seconds; it reached 2.248 test bits per character. The
transformer (3 layers of width 128) reached 2.530 in 466 CPU-seconds (research/baselines/README.md).
"""

from lib.train.config import base_config, parse_arg

MODELS = {
    "transformer": dict(kind="transformer", dim=128, num_layers=3, num_heads=4, dropout=0.0),
    "gru": dict(kind="gru", dim=256, num_layers=1, num_heads=0, dropout=0.0),
    "lstm": dict(kind="lstm", dim=256, num_layers=1, num_heads=0, dropout=0.0),
}


def get_config(arg: str = "transformer"):
    """The config for `arg` (e.g. "transformer", "gru,smoke")."""
    words = parse_arg(arg, {"kind": (sorted(MODELS), "transformer")}, ("smoke",))
    kind, smoke = words["kind"], words["smoke"]

    c = base_config()
    c.project = "baselines"
    c.model.update(MODELS[kind])

    c.data.name = "shakespeare_char"
    c.data.data_dir = ""  # "": $BRAINSEQ_DATA_DIR or ~/.cache/brainseq/data
    c.data.seq_len = 128  # stored windows (256) are split into sequences of this length
    c.data.batch_size = 32
    c.data.evaluate_test = True
    c.data.num_samples = 3
    c.data.sample_length = 400
    c.data.sample_prompt = "ROMEO.\n"

    c.train.num_steps = 800
    c.train.log_every = 50
    c.train.eval_every = 200
    c.train.eval_batches = 8
    c.train.checkpoint_every = 200
    c.optimizer.learning_rate = 3e-3 if kind == "transformer" else 5e-3
    c.optimizer.warmup_steps = 100
    c.optimizer.weight_decay = 0.01

    if smoke:
        c.model.dim = 32
        c.model.num_layers = 1
        c.data.seq_len = 32
        c.data.batch_size = 8
        c.data.evaluate_test = False
        c.data.num_samples = 1
        c.data.sample_length = 20
        c.train.num_steps = 4
        c.train.log_every = 2
        c.train.eval_every = 2
        c.train.eval_batches = 2
        c.train.checkpoint_every = 2
        c.optimizer.warmup_steps = 1
    return c
