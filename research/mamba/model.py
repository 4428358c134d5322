"""Mamba: Linear-Time Sequence Modeling with Selective State Spaces (Gu & Dao, 2023), small scale.

Three experiments, each a function of a config (see configs/*.py) returning a list of result
rows (one per model, or per model and test length):
- `run_synthetic`: a synthetic task (selective copying, MQAR) for several mixers at one width;
- `run_induction`: induction heads trained at one length and tested at longer ones;
- `run_lm`: character-level Shakespeare for several mixers matched in parameter count.
`run(config)` dispatches on `config.experiment`. The models are `lib.nn.SequenceModel`s of the
registered mixers (`mamba`, `s4d`, `attention`, `gru`, `gla`, `retnet`, ...).
"""

from __future__ import annotations

from research.mamba import harness


def _mixer_kwargs(config, mixer: str) -> dict:
    kw = config.get("mixer_kwargs", {})
    return dict(kw.get(mixer, {})) if kw else {}


def _fit_kwargs(config) -> dict:
    return dict(
        steps=config.steps,
        eval_batches=config.eval_batches,
        learning_rate=config.learning_rate,
        seed=config.seed,
    )


def run_synthetic(config) -> list[dict]:
    """Train each of `config.mixers` on `config.task` (a `lib.data` synthetic task with
    `config.task_options`) at width `config.dim` and depth `config.depth`.

    Returns:
      One row per mixer: `mixer`, `params`, `train_loss`, `test_accuracy` (on the masked,
      answer positions), `test_loss`, `seconds`.
    """
    builder = harness.task_builder(config.task, **dict(config.task_options))
    vocab = harness.vocab_size(builder)
    rows = []
    for mixer in config.mixers:
        model = harness.make_model(
            mixer, config.dim, config.depth, vocab, _mixer_kwargs(config, mixer)
        )
        train = harness.synthetic_batches(builder, "train", config.batch_size, config.seed)
        test = harness.synthetic_batches(builder, "test", config.batch_size, config.seed)
        out = harness.train_and_eval(model, train, {"test": test}, **_fit_kwargs(config))
        rows.append({"mixer": mixer, **out})
        print(rows[-1], flush=True)  # long runs: each model's result as soon as it is known
    return rows


def run_induction(config) -> list[dict]:
    """Induction heads: train each mixer at `task_options.seq_len`, test at every length of
    `config.test_lengths` (same vocabulary; the answer is always at the last position).
    With `config.curriculum_len` > 0, each mixer first trains `config.curriculum_steps` steps
    at that (shorter) length and then `config.steps` at `seq_len` from those parameters.

    Returns:
      One row per (mixer, test length): `mixer`, `length`, `accuracy`, `params`.
    """
    options = dict(config.task_options)
    builder = harness.task_builder("induction_heads", **options)
    vocab = harness.vocab_size(builder)
    rows = []
    for mixer in config.mixers:
        model = harness.make_model(
            mixer, config.dim, config.depth, vocab, _mixer_kwargs(config, mixer)
        )
        params, seconds = None, 0.0
        if config.get("curriculum_len", 0):
            short = harness.task_builder(
                "induction_heads", **{**options, "seq_len": int(config.curriculum_len)}
            )
            train = harness.synthetic_batches(short, "train", config.batch_size, config.seed)
            params, info = harness.fit(model, train, steps=config.curriculum_steps,
                                       learning_rate=config.learning_rate, seed=config.seed)  # fmt: skip
            seconds = info["seconds"]
        train = harness.synthetic_batches(builder, "train", config.batch_size, config.seed)
        params, info = harness.fit(
            model,
            train,
            steps=config.steps,
            learning_rate=config.learning_rate,
            seed=config.seed,
            init_params=params,
        )
        info["seconds"] += seconds
        for length in config.test_lengths:
            long = harness.task_builder("induction_heads", **{**options, "seq_len": int(length)})
            batch = max(1, min(config.batch_size, config.eval_tokens // int(length)))
            test = harness.synthetic_batches(long, "test", batch, config.seed)
            num = max(1, config.eval_examples // batch)
            res = harness.evaluate(model, params, test, num)
            rows.append(
                {
                    "mixer": mixer,
                    "length": int(length),
                    "accuracy": res["accuracy"],
                    "params": info["params"],
                    "train_seconds": info["seconds"],
                }
            )
    return rows


def run_lm(config) -> list[dict]:
    """Character-level Shakespeare: each mixer at the width whose parameter count is nearest
    `config.target_params` (depth `config.depth`), trained `config.steps` steps.

    Returns:
      One row per mixer: `mixer`, `dim`, `params`, `train_loss`, `test_bits_per_token`,
      `seconds`.
    """
    import lib.data

    vocab = int(lib.data.info("shakespeare_char")["vocab_size"])
    rows = []
    for mixer in config.mixers:
        kw = _mixer_kwargs(config, mixer)
        dim = harness.dim_for_params(mixer, config.target_params, config.depth, vocab, kw)
        model = harness.make_model(mixer, dim, config.depth, vocab, kw)
        train = harness.shakespeare_batches("train", config.batch_size, config.seq_len, config.seed)
        test = harness.shakespeare_batches("test", config.batch_size, config.seq_len, config.seed)
        out = harness.train_and_eval(model, train, {"test": test}, **_fit_kwargs(config))
        rows.append({"mixer": mixer, "dim": dim, **out})
    return rows


EXPERIMENTS = {"synthetic": run_synthetic, "induction": run_induction, "lm": run_lm}

TABLE_KEYS = {
    "synthetic": ["mixer", "params", "train_loss", "test_accuracy", "seconds"],
    "induction": ["mixer", "length", "accuracy", "params"],
    "lm": ["mixer", "dim", "params", "train_loss", "test_bits_per_token", "seconds"],
}


def run(config) -> list[dict]:
    """Run the experiment `config.experiment` ("synthetic", "induction" or "lm")."""
    if config.experiment not in EXPERIMENTS:
        raise ValueError(
            f"unknown experiment {config.experiment!r}; expected {sorted(EXPERIMENTS)}"
        )
    return EXPERIMENTS[config.experiment](config)
