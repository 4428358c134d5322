"""Deconstructing recurrence, attention and gating (Heidenreich et al. 2024): forecasting.

Command (all six variants on one data set; about 3-6 minutes on a loaded 2-core CPU):

    python -m lib.data prepare \
        lorenz96/burn_in=200,num_steps=64,num_test=16,num_train=64,num_validation=8
    python -m launch.deconstructing \
        --config=research/deconstructing/configs/forecast.py:lorenz96,all \
        --workdir=workdirs/deconstructing/lorenz96

The data set with `data.builder_kwargs` is a `lib.data` variant (stored beside copies with
other options); a run whose data set is missing stops with the exact `prepare` command.

`arg` is "<data>[,<variant>][,matched][,smoke]", data in {lorenz96, kuramoto_sivashinsky,
sunspots}, variant in {mlp, rnn, gru, lstm, transformer, gru_attention, all} (or several
joined by "+", e.g. "rnn+gru"); `--config.seeds="(0,1,2)"` repeats each over seeds. `matched` sizes
every variant to the GRU's parameter count at dim 32 (width and MLP width solved by
`model.matched_width`, within 0.2%): `...:lorenz96,all,matched`. Metric: test MSE relative to
the persistence forecast (x_{t+1} = x_t); lower is better. Results: research/deconstructing/README.md.
"""

import ml_collections

from lib.train.config import base_config, parse_arg

DATA = ("lorenz96", "kuramoto_sivashinsky", "sunspots")
VARIANTS = ("mlp", "rnn", "gru", "lstm", "transformer", "gru_attention", "all")


def get_config(arg: str = "lorenz96,gru") -> ml_collections.ConfigDict:
    words = parse_arg(
        arg,
        {"data": (DATA, "lorenz96"), "variant": (VARIANTS, "gru")},
        ("matched", "smoke"),
        joined=("variant",),  # several variants joined by "+", e.g. "rnn+gru"
    )
    data, variant, smoke, matched = (words[k] for k in ("data", "variant", "smoke", "matched"))
    c = base_config()
    c.project = "deconstructing"
    c.seed = 0
    # A seed study: --config.seeds="(0,1,2,3,4)" trains those seeds at once in memory
    # (launch/deconstructing.py, lib.train.fit); (): one run at `seed` through lib.train.loop.
    c.seeds = ()
    c.model.variant = variant
    c.model.dim = 32
    c.model.depth = 2
    c.model.num_heads = 4
    c.model.output_scale = 1.0
    # "" : every variant at width dim (counts differ); a variant name: match its count at dim.
    c.model.match_params = "gru" if matched else ""
    c.data.name = data
    c.data.data_dir = ""
    c.data.batch_size = 16
    small = {"num_train": 64, "num_validation": 8, "num_test": 16, "num_steps": 64}
    if data == "lorenz96":  # few, short trajectories: the default options prepare slowly
        c.data.builder_kwargs = ml_collections.ConfigDict({**small, "burn_in": 200})
    elif data == "kuramoto_sivashinsky":
        c.data.builder_kwargs = ml_collections.ConfigDict({**small, "burn_in": 200})
    else:
        c.data.builder_kwargs = ml_collections.ConfigDict({"seq_len": 16})
    c.optimizer.learning_rate = 3e-3
    c.optimizer.warmup_steps = 20
    c.train.num_steps = 200
    c.train.log_every = 100
    c.train.eval_every = 0
    c.train.checkpoint_every = 0
    c.train.plot = False
    c.train.progress_bar = False
    if smoke:
        c.model.dim = 8
        c.model.depth = 1
        c.model.num_heads = 2
        c.data.batch_size = 8  # divides over the 8 simulated test devices
        if data != "sunspots":
            c.data.builder_kwargs = ml_collections.ConfigDict(
                {"num_train": 8, "num_validation": 8, "num_test": 8, "num_steps": 16,
                 "burn_in": 20}
            )  # fmt: skip
        c.optimizer.warmup_steps = 1
        c.train.num_steps = 3
        c.train.log_every = 1
    return c
