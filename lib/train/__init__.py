"""Train state, pure train/eval steps, the loop, checkpoints, metrics, sharding.

Modules (import them directly, e.g. `from lib.train.loop import train_and_evaluate`):

- `state`: `TrainState`, `create_train_state`.
- `optim`: `make_optimizer(opt_cfg, num_steps)`, `make_schedule`.
- `losses`: `lm_loss`, `classification_loss`, `mse_loss` (each returns `(loss, metrics)`).
- `loop`: `train_and_evaluate(config, workdir, *, model, loss_fn, train_data, ...)`, `Trainer`,
  `make_train_step`, `make_eval_step`.
- `checkpoint`: `Checkpointer` (orbax CheckpointManager: keep N, resume, fall back), `StopSignal`.
- `workdir`: `check_config` (a workdir's `config.json` vs the run's config; `train.start_over`).
- `sharding`: `make_mesh(data=-1, fsdp=1)`, `batch_sharding`, `state_shardings`,
  `maybe_initialize_distributed`, `ProcessRows` (each host's rows of a global batch stream).
- `config`: `base_config()`, `load_config("path.py:arg", overrides)` (the launchers' parser:
  `define_config_flag`, `parse_flags`), `parse_arg` (a config file's `arg`), `steps_from_epochs`.
- `metrics`: `MetricsWriter`, `read_metrics`, `plot_curves`.
- `fit`: `make_fit` (a whole in-memory training run as one jitted scan), `run_seeds` (looped
  or vmapped over seeds, scanned in chunks with a progress bar, per-seed `metrics.jsonl`,
  TensorBoard, `curves.png`) and `fit_study` (variants x seeds, results.json): seed studies.
- `arrays`: `ArrayBatches`, `eval_batches`, `array_loss`: in-memory arrays on the run path.
- `study`: `run_study` (config variants x seeds, each a run of the loop, one results table).
In-memory data sets trained by epochs: `lib.data.arrays.EpochBatches` and `load_arrays`.
"""
