"""The copying memory task (Hochreiter & Schmidhuber, 1997; Arjovsky et al., 2016) for the
baseline GRU, LSTM and Transformer: remember 10 symbols across 100 blank steps.

  python -m lib.data prepare copying
  python -m launch.train --config=research/baselines/configs/copying.py:lstm \
      --workdir=/tmp/baselines/copying_lstm

`arg`: the model (`gru`, `lstm`, `transformer`; default lstm), optionally `,smoke`. The loss
counts only the 10 recalled symbols; chance is log2(8) = 3 bits per symbol.
"""

from lib.train.config import base_config, parse_arg

MODELS = {
    "transformer": dict(kind="transformer", dim=64, num_layers=2, num_heads=4, dropout=0.0),
    "gru": dict(kind="gru", dim=128, num_layers=1, num_heads=0, dropout=0.0),
    "lstm": dict(kind="lstm", dim=128, num_layers=1, num_heads=0, dropout=0.0),
}


def get_config(arg: str = "lstm"):
    """The config for `arg` (e.g. "lstm", "transformer,smoke")."""
    words = parse_arg(arg, {"kind": (sorted(MODELS), "lstm")}, ("smoke",))
    kind, smoke = words["kind"], words["smoke"]

    c = base_config()
    c.project = "baselines"
    c.model.update(MODELS[kind])

    c.data.name = "copying"
    c.data.data_dir = ""  # "": $BRAINSEQ_DATA_DIR or ~/.cache/brainseq/data
    c.data.seq_len = 0  # 0: the stored length (2 * copy_len + lag)
    c.data.batch_size = 64
    c.data.evaluate_test = True
    c.data.num_samples = 0  # no text samples for a symbol task
    c.data.sample_length = 0
    c.data.sample_prompt = ""

    c.train.num_steps = 2000
    c.train.log_every = 50
    c.train.eval_every = 500
    c.train.eval_batches = 0
    c.train.checkpoint_every = 500
    c.optimizer.learning_rate = 2e-3
    c.optimizer.warmup_steps = 100

    if smoke:
        c.model.dim = 16
        c.model.num_layers = 1
        c.data.batch_size = 8
        c.train.num_steps = 4
        c.train.log_every = 2
        c.train.eval_every = 2
        c.train.eval_batches = 2
        c.train.checkpoint_every = 2
        c.optimizer.warmup_steps = 1
    return c
