"""Mamba: Linear-Time Sequence Modeling with Selective State Spaces (Gu & Dao, 2023), small scale.

`build(config)` gives one language model and its data to `lib.train.loop.train_and_evaluate`
(`python -m launch.train --config=research/mamba/configs/<c>.py --workdir=DIR`):

- the model: a `lib.nn.SequenceModel` of the registered mixer `config.model.mixer` (`mamba`,
  `s4d`, `attention`, `gru`, `gla`, ...; `lib.nn.sizing.language_model`: Mamba and S4D blocks
  have no MLP), at width `config.model.dim`, or at the width whose parameter count is nearest
  `config.model.target_params` when that is set (models compared at equal size);
- the data (`lib.data.stream.sequence_task`): a generated task (`selective_copying`,
  `induction_heads`, `mqar`, ...) drawn in memory from its `lib.data` builder, fresh batches
  every step, or the prepared `shakespeare_char`; induction heads is tested at every length
  of `config.data.test_lengths` (named test sets `len<L>`: metrics `test_len<L>_accuracy`).

The comparisons of the README (several mixers on one task) are studies over
`config.study.mixers` in `launch/mamba.py`. `run_curriculum` trains a first phase at a shorter
length and starts the run from its parameters (two chained runs, each resumable).
"""

from __future__ import annotations

import os

import jax

from lib.data import stream
from lib.nn import sizing
from lib.train import losses


def make_model(model_cfg, vocab_size: int):
    """The model of `config.model` and its width: `(SequenceModel, dim)`.

    `model_cfg.mixer_kwargs` maps mixer names to their keyword arguments (only the chosen
    mixer's are used), so one config serves a study over mixers; `target_params` > 0 picks
    the width whose parameter count is nearest it (`dim` is then unused).
    """
    return sizing.sized_language_model(
        model_cfg.mixer, model_cfg.depth, vocab_size,
        dict(model_cfg.mixer_kwargs.get(model_cfg.mixer, {})),
        dim=model_cfg.dim, target_params=model_cfg.target_params,
    )  # fmt: skip


def _length_tests(config) -> dict:
    """Named test sets `len<L>` of induction heads at each of `config.data.test_lengths`:
    batches of about `eval_tokens` tokens (at most `batch_size` and `eval_examples` sequences,
    rounded up to a multiple of the local devices), `eval_examples` examples per length (or one
    batch, when a batch holds more)."""
    d = config.data
    per_device = jax.local_device_count()
    tests = {}
    for length in d.test_lengths:
        builder = stream.task_builder(d.task, **{**dict(d.options), "seq_len": int(length)})
        batch = max(1, min(d.batch_size, d.eval_tokens // int(length), d.eval_examples))
        batch = -(-batch // per_device) * per_device
        num = max(1, d.eval_examples // batch)
        make = lambda b=builder, n=batch: stream.TaskBatches(b, "test", n, config.seed)
        tests[f"len{int(length)}"] = stream.finite_batches(make, num)
    return tests


def build(config) -> dict:
    """Model, loss and data for `config` (see configs/*.py): the keyword arguments of
    `lib.train.loop.train_and_evaluate`, with `on_end` adding `params` and `dim` to the final
    metrics and `init_from` set from `config.init_from` (a curriculum's first phase)."""
    d = config.data
    if config.curriculum.num_steps and not config.init_from:
        raise ValueError(
            "config.curriculum needs two chained runs: run it with python -m launch.mamba "
            "(research.mamba.model.run_curriculum), or set config.init_from to the first run"
        )
    task = stream.sequence_task(
        d.task, options=d.options, batch_size=d.batch_size, seed=config.seed,
        eval_batches=d.eval_batches, test_batches=0 if d.test_lengths else d.test_batches,
        seq_len=d.seq_len, data_dir=d.data_dir or None,
    )  # fmt: skip
    model, dim = make_model(config.model, task["vocab_size"])
    test = _length_tests(config) if d.test_lengths else task["test_data"]

    def on_end(state, workdir):
        return {"params": sizing.count_params(model), "dim": dim}

    return dict(
        model=model,
        loss_fn=losses.lm_loss_fn,
        train_data=task["train_data"],
        eval_data=task["eval_data"],
        test_data=test,
        on_end=on_end,
        init_from=config.init_from or None,
    )


def run_curriculum(config, workdir: str, *, run) -> dict:
    """Train `config` after a first phase at a shorter length, from that phase's parameters.

    With `config.curriculum.num_steps` > 0: first `run(phase_1, <workdir>/curriculum)` with
    `data.options.seq_len = curriculum.seq_len`, `curriculum.num_steps` steps and its own
    warmup (a tenth of them), tested at that length only; then `run(config, workdir)` with
    `init_from` that folder (fresh optimizer state, its own schedule). Each phase is an
    ordinary run: rerunning resumes whichever phase was stopped. Without a curriculum this is
    `run(config, workdir)`.

    Args:
      config: the run's ConfigDict (not changed).
      workdir: the run's folder.
      run: `run(config, workdir) -> final metrics` (e.g. `launch.train.run`).
    """
    cur = config.curriculum
    if not cur.num_steps:
        return run(config, workdir)
    if cur.seq_len <= 0:
        raise ValueError(f"config.curriculum.seq_len must be > 0 with num_steps, got {cur.seq_len}")
    first = config.copy_and_resolve_references()
    first.data.options.seq_len = int(cur.seq_len)
    first.data.test_lengths = (int(cur.seq_len),)
    first.train.num_steps = int(cur.num_steps)
    first.optimizer.warmup_steps = max(int(cur.num_steps) // 10, 1)
    first.curriculum.num_steps = 0
    first_dir = os.path.join(workdir, "curriculum")
    run(first, first_dir)
    second = config.copy_and_resolve_references()
    second.init_from = first_dir
    return run(second, workdir)
