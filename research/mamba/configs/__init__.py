"""The training recipe the Mamba configs share (it reproduces the experiments' original trainer).

AdamW (weight decay 0.1), gradients clipped at global norm 1, learning rate warmed up linearly
over the first tenth of the steps, then cosine-decayed to a tenth of the peak; batches of fresh
task examples; one model per run (`model.mixer`), the mixers of a comparison in `study.mixers`.
"""

import ml_collections

from lib.train.config import base_config


def recipe(*, steps: int, learning_rate: float, batch_size: int, smoke: bool):
    """The shared config: `project`, model, data, curriculum and study fields with defaults,
    and the optimizer recipe; `smoke` shrinks logging, evaluation and checkpoints to seconds."""
    c = base_config()
    c.project = "mamba"
    c.init_from = ""  # a finished run's workdir to start from (a curriculum's first phase)
    c.model.mixer = "mamba"
    c.model.mixer_kwargs = {}  # mixer name -> its keyword arguments
    c.model.dim = 32
    c.model.depth = 2
    c.model.target_params = 0  # > 0: the width whose parameter count is nearest (dim unused)
    c.data.task = ""
    c.data.options = {}  # a generated task's builder options (lib.data)
    c.data.batch_size = batch_size
    c.data.seq_len = 0  # a stored set's length (0: as stored)
    c.data.data_dir = ""  # "": $BRAINSEQ_DATA_DIR or ~/.cache/brainseq/data
    c.data.eval_batches = 2  # validation batches per evaluation (the curves)
    c.data.test_batches = 8  # test batches at the end
    c.data.test_lengths = ()  # induction heads: named test sets at these lengths
    c.data.eval_tokens = 16384  # with test_lengths: tokens per test batch (batch_size at most)
    c.data.eval_examples = 128  # with test_lengths: test examples per length
    c.curriculum = ml_collections.ConfigDict({"seq_len": 0, "num_steps": 0})
    c.study = ml_collections.ConfigDict({"mixers": ("mamba",), "seeds": ()})
    c.train.num_steps = steps
    c.train.log_every = 50
    c.train.eval_every = 100
    c.train.eval_batches = 0  # the whole (finite) evaluation set
    c.train.checkpoint_every = 200
    c.optimizer.name = "adamw"
    c.optimizer.learning_rate = learning_rate
    c.optimizer.schedule = "warmup_cosine"
    c.optimizer.warmup_steps = c.train.get_ref("num_steps") // 10
    c.optimizer.end_learning_rate_factor = 0.1
    c.optimizer.weight_decay = 0.1
    c.optimizer.grad_clip_norm = 1.0
    if smoke:
        c.model.dim, c.model.depth = 16, 1
        c.data.batch_size, c.data.eval_batches, c.data.test_batches = 8, 1, 1
        c.train.num_steps, c.train.log_every, c.train.eval_every = 3, 1, 2
        c.train.checkpoint_every = 0
    return c


def parse_arg(arg: str) -> bool:
    """True for "smoke", False for ""; anything else is an error naming the choices."""
    if arg not in ("", "smoke"):
        raise ValueError(f"config arg {arg!r}: expected '' or 'smoke'")
    return arg == "smoke"
