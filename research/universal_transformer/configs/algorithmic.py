"""Universal Transformer vs Transformer on algorithmic tasks, trained short, tested long.

Command (one run per task x model; about 4-6 minutes each on a 2-core CPU):

    python -m lib.data prepare \
        algorithmic_reverse/num_test=1024,num_train=20000,num_validation=512,test_max_len=16,train_max_len=8
    python launch/universal_transformer.py \
        --config=research/universal_transformer/configs/algorithmic.py:reverse,ut \
        --workdir=workdirs/ut/reverse_ut

`arg` is "<task>,<model>[,smoke]" with task in {copy, reverse, addition} and model in
{ut, ut_noact, transformer}. Train/validation strings have 1-8 symbols; the test split has
9-16 (length generalization). The data set with `data.builder_kwargs` is a `lib.data` variant
(stored beside copies with other options); a run whose data set is missing stops with the exact
`prepare` command. Expected: see research/universal_transformer/README.md.
"""

import ml_collections

from lib.train.config import base_config, parse_arg

TASKS = ("copy", "reverse", "addition")
MODELS = ("ut", "ut_noact", "transformer")


def get_config(arg: str = "reverse,ut") -> ml_collections.ConfigDict:
    words = parse_arg(arg, {"task": (TASKS, "reverse"), "model": (MODELS, "ut")}, ("smoke",))
    task, kind, smoke = words["task"], words["model"], words["smoke"]
    c = base_config()
    c.project = "universal_transformer"
    c.seed = 0
    c.model.kind = "transformer" if kind == "transformer" else "ut"
    c.model.act = kind == "ut"
    c.model.dim = 64
    c.model.num_heads = 4
    c.model.max_steps = 4
    c.model.act_eps = 0.01
    c.model.ponder_weight = 0.01
    c.data.name = f"algorithmic_{task}"
    c.data.data_dir = ""
    c.data.batch_size = 64
    c.data.builder_kwargs = ml_collections.ConfigDict(
        {"min_len": 1, "train_max_len": 8, "test_max_len": 16, "num_train": 20000,
         "num_validation": 512, "num_test": 1024}
    )  # fmt: skip
    c.optimizer.learning_rate = 1e-3
    c.optimizer.warmup_steps = 200
    c.train.num_steps = 2000
    c.train.log_every = 100
    c.train.eval_every = 1000
    c.train.checkpoint_every = 1000
    if smoke:
        c.model.dim = 32
        c.model.max_steps = 2
        c.data.batch_size = 8
        c.data.builder_kwargs.num_train = 64
        c.data.builder_kwargs.num_validation = 16
        c.data.builder_kwargs.num_test = 16
        c.optimizer.warmup_steps = 2
        c.train.num_steps = 5
        c.train.log_every = 1
        c.train.eval_every = 0
        c.train.checkpoint_every = 0
        c.train.plot = False
        c.train.progress_bar = False
    return c
