"""The training loop: pure, sharded train/eval steps, evaluation, logging, checkpoints, resume.

The model and data are arguments; this file knows nothing about any model. Contract:

- `loss_fn(params, batch, rng, *, model, train) -> (loss, metrics)`: `batch` is a dict of
  arrays (this step's global batch), `rng` a PRNG key for dropout and the like, `train` a
  Python bool. `metrics` is a dict of scalar means over the batch and may hold `count` (their
  weight when averaging over eval batches; see `lib.train.losses`). A model with mutable
  collections (e.g. `batch_stats`) gets `model_state=` too and returns
  `(loss, (metrics, new_model_state))`.
- `train_data`: an iterator of batches (dicts of numpy arrays: this process's share of the
  global batch). With `get_state()` / `set_state(s)` its position is checkpointed; without,
  a resumed run skips the batches already seen.
- `eval_data` / `test_data`: zero-argument callables returning a fresh, finite iterator, or
  dicts of them by name (named evaluation sets, e.g. `{"len256": ..., "len1024": ...}`), whose
  metrics are `eval_<name>_<metric>` (logged as split `eval_<name>`).
"""

import functools
import itertools
import json
import os
import signal
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from lib.train import checkpoint as ckpt_lib
from lib.train import metrics as metrics_lib
from lib.train import sharding as sharding_lib
from lib.train import workdir as workdir_lib
from lib.train.optim import make_optimizer, make_schedule
from lib.train.state import TrainState, create_train_state, num_params, step_rng


def make_train_step(model, loss_fn, schedule=None):
    """A pure `train_step(state, batch) -> (state, metrics)`: one gradient update.

    Metrics are the loss function's, plus `grad_norm` and (given `schedule`) `learning_rate`.
    """

    def train_step(state: TrainState, batch):
        rng = step_rng(state)
        extra = {} if state.model_state is None else {"model_state": state.model_state}

        def compute(params):
            return loss_fn(params, batch, rng, model=model, train=True, **extra)

        (loss, aux), grads = jax.value_and_grad(compute, has_aux=True)(state.params)
        metrics, new_model_state = aux if isinstance(aux, tuple) else (aux, None)
        metrics = dict(metrics, loss=loss, grad_norm=optax.tree.norm(grads))
        if schedule is not None:
            metrics["learning_rate"] = schedule(state.step)
        return state.apply_gradients(grads, new_model_state), metrics

    return train_step


def make_eval_step(model, loss_fn):
    """A pure `eval_step(state, batch) -> (state, metrics)`; the state comes back unchanged."""

    def eval_step(state: TrainState, batch):
        extra = {} if state.model_state is None else {"model_state": state.model_state}
        rng = step_rng(state)
        loss, aux = loss_fn(state.params, batch, rng, model=model, train=False, **extra)
        metrics = aux[0] if isinstance(aux, tuple) else aux
        return state, dict(metrics, loss=loss)

    return eval_step


# The defaults of the `make_train_step=` / `make_eval_step=` keywords below.
_default_train_step, _default_eval_step = make_train_step, make_eval_step


class Trainer:
    """Builds the mesh, state and jitted steps for a model; `train_and_evaluate` drives it.

    Args:
      config: the run's ConfigDict (sections `train`, `mesh`, `optimizer`, `seed`).
      model, loss_fn: see the module docstring.
      init_batch: a batch (dict with `inputs`, a tuple of arguments, or an array) for
        `model.init`; its first two examples are used.
      mesh: a ready `Mesh` (default: `make_mesh(config.mesh.data, config.mesh.fsdp)`).
      make_train_step: optional factory `(model, loss_fn, schedule) -> train_step` of a pure
        `train_step(state, batch) -> (state, metrics)` that may make several updates (each
        with `state.apply_gradients`, e.g. a `lax.scan` over segments); jitted with the same
        shardings and donation as the default one-update step (`make_train_step` above).
      make_eval_step: optional factory `(model, loss_fn) -> eval_step(state, batch) ->
        (state, metrics)` (default: `make_eval_step` above); metrics may hold `count`.
    """

    def __init__(
        self,
        config,
        *,
        model,
        loss_fn,
        init_batch,
        mesh=None,
        make_train_step=None,
        make_eval_step=None,
    ):
        self.config = config
        self.model = model
        self.mesh = mesh or sharding_lib.make_mesh(config.mesh.data, config.mesh.fsdp)
        self.batch_sharding = sharding_lib.batch_sharding(self.mesh)
        self.replicated = sharding_lib.replicated(self.mesh)
        num_steps = config.train.num_steps
        tx = make_optimizer(config.optimizer, num_steps)
        schedule = make_schedule(config.optimizer, num_steps)
        init_args = _init_args(init_batch)
        create = functools.partial(create_train_state, model, tx)
        rng = jax.random.PRNGKey(config.seed)
        abstract = jax.eval_shape(create, rng, *init_args)
        self.state_sharding = sharding_lib.state_shardings(self.mesh, abstract)
        self._create = jax.jit(create, out_shardings=self.state_sharding)
        self._init = (rng, init_args)
        self.train_step = jax.jit(
            (make_train_step or _default_train_step)(model, loss_fn, schedule),
            in_shardings=(self.state_sharding, self.batch_sharding),
            out_shardings=(self.state_sharding, self.replicated),
            donate_argnums=0,
        )
        self.eval_step = jax.jit(
            (make_eval_step or _default_eval_step)(model, loss_fn),
            in_shardings=(self.state_sharding, self.batch_sharding),
            out_shardings=(self.state_sharding, self.replicated),
            donate_argnums=0,
        )

    def init_state(self) -> TrainState:
        """A fresh, sharded `TrainState` at step 0 (deterministic from `config.seed`)."""
        rng, init_args = self._init
        return self._create(rng, *init_args)

    def shard(self, batch):
        return sharding_lib.shard_batch(batch, self.batch_sharding)

    def evaluate(self, state, make_iter, max_batches: int = 0):
        """Mean metrics over a fresh iterator (weighted by `count` where given).

        Returns:
          `(state, metrics)`: the state is handed back because `eval_step` donates it.
        """
        sums, total, batches = {}, 0.0, 0
        for batch in itertools.islice(make_iter(), max_batches or None):
            state, m = self.eval_step(state, self.shard(batch))
            m = jax.device_get(m)
            w = float(m.get("count", 1.0))
            for k, v in m.items():
                if k != "count":
                    sums[k] = sums.get(k, 0.0) + float(v) * w
            total += w
            batches += 1
        if batches == 0:
            raise ValueError("the evaluation iterator yielded no batches")
        out = {k: v / max(total, 1e-12) for k, v in sums.items()}
        out["count"] = total
        return state, out


def train_and_evaluate(
    config,
    workdir: str,
    *,
    model,
    loss_fn,
    train_data,
    eval_data=None,
    init_batch=None,
    test_data=None,
    on_end=None,
    mesh=None,
    make_train_step=None,
    make_eval_step=None,
    init_from=None,
) -> dict:
    """Train `model` on `train_data`, evaluating, logging and checkpointing into `workdir`.

    Resumes from the newest readable checkpoint in `<workdir>/checkpoints` (model, optimizer,
    step, RNG and data position). SIGTERM/SIGINT save a checkpoint and return early.

    Args:
      config: ConfigDict (see `lib.train.config.base_config` for the sections used).
      workdir: output directory: `metrics.jsonl`, `tensorboard/`, `checkpoints/`,
        `curves.png`, `config.json`, `final_metrics.json`.
      model, loss_fn, train_data, eval_data, test_data: see the module docstring.
      init_batch: batch for `model.init` (default: the first training batch, which is then
        also trained on).
      on_end: optional `on_end(state, workdir) -> dict` run after training (e.g. writing
        samples); its dict is merged into the returned metrics.
      mesh: optional ready mesh.
      make_train_step, make_eval_step: optional step factories for steps that do more than
        one gradient update or one forward pass per batch (e.g. deep supervision over
        segments); see `Trainer`.
      init_from: optional workdir of an earlier run (same model and optimizer): a fresh run
        starts from the params (and model state) of its newest checkpoint instead of
        `model.init`, with a fresh optimizer state and step 0 (e.g. a curriculum's second
        phase, fine-tuning). Ignored when `workdir` has a checkpoint to resume from.

    Returns:
      Final metrics: `step`, `train_*` (mean over the last logging window), `eval_*`,
      `test_*`, plus `interrupted` (the signal's name) when stopped by a signal.

    Raises:
      FloatingPointError: the training loss, parameters or optimizer state became NaN or
        infinite (the message names the step and the last finite checkpoint, where a rerun
        resumes; a non-finite state is never saved).
      ValueError: a bad `config.train` value (named), or `workdir` holds a run made with
        another config (`lib.train.workdir.ConfigChangedError`; nothing is touched).
      lib.train.checkpoint.CheckpointWriteError: a checkpoint could not be written.
    """
    tc = config.train
    validate_train_config(tc)
    for _, make_iter in _named_sets("eval", eval_data) + _named_sets("test", test_data):
        _open_first_batch(make_iter)  # a missing or empty split fails before training, not after
    os.makedirs(workdir, exist_ok=True)
    moved = workdir_lib.check_config(workdir, config, start_over=tc.get("start_over", False))
    train_iter = iter(train_data)
    if init_batch is None:
        init_batch = next(train_iter)
        train_iter = _Chain(init_batch, train_iter)
    trainer = Trainer(
        config,
        model=model,
        loss_fn=loss_fn,
        init_batch=init_batch,
        mesh=mesh,
        make_train_step=make_train_step,
        make_eval_step=make_eval_step,
    )
    state = trainer.init_state()
    checkpointer = ckpt_lib.Checkpointer(
        os.path.join(workdir, "checkpoints"),
        keep=tc.keep_checkpoints,
        save_every=tc.checkpoint_every,
        async_save=tc.async_checkpointing,
    )
    start = 0
    try:
        restored = checkpointer.restore(state)
    except BaseException:
        checkpointer.close(raise_errors=False)
        raise
    if restored is not None:
        state, data_state, start = restored
        train_iter = _resume_data(train_iter, data_state, start)
    elif init_from:
        state = _warm_start(state, init_from)
    workdir_lib.write_config(workdir, config)
    if jax.process_index() == 0:
        if moved:
            print(f"train.start_over: the previous run's files are now in {moved}", flush=True)
        print(
            f"{'resuming at' if start else 'starting at'} step {start} of {tc.num_steps}; "
            f"{num_params(state.params):,} parameters; mesh {dict(trainer.mesh.shape)}; "
            f"workdir {workdir}",
            flush=True,
        )
    writer = metrics_lib.MetricsWriter(workdir, truncate_after=start)
    result = {"step": start}
    bar = tqdm(
        total=tc.num_steps,
        initial=start,
        disable=not tc.progress_bar or jax.process_index() != 0,
        dynamic_ncols=True,
    )
    # Every path out closes the checkpointer (pending writes finish or fail loudly), and the
    # final checkpoint is on disk before final evaluation or `on_end` can fail.
    try:
        stopped = _train_loop(
            trainer, state, train_iter, checkpointer, writer, bar, result, start, eval_data
        )
        state, step = result.pop("_state"), result["step"]
        if stopped:
            return result
        bar.close()
        checkpointer.save(step, state, _data_state(train_iter), force=True)
        checkpointer.wait()
        for kind, data in (("eval", eval_data), ("test", test_data)):
            for split, make_iter in _named_sets(kind, data):
                state, em = trainer.evaluate(
                    state, make_iter, tc.eval_batches if kind == "eval" else 0
                )
                writer.write(step, split, em)
                result.update({f"{split}_{k}": v for k, v in em.items()})
        if on_end is not None:
            result.update(on_end(state, workdir) or {})
    except BaseException as e:  # a NaN, a failed write, Ctrl-C twice, a bug: tidy up, re-raise
        bar.close()
        writer.close()
        checkpointer.close(raise_errors=False)
        if isinstance(e, FloatingPointError) and e.args:
            e.args = (f"{e.args[0]} {_resume_note(checkpointer)}", *e.args[1:])
        raise
    checkpointer.close()
    writer.close()
    if tc.plot:
        metrics_lib.plot_curves(workdir)
    if jax.process_index() == 0:
        with open(os.path.join(workdir, "final_metrics.json"), "w") as f:
            json.dump({k: _jsonable(v) for k, v in result.items()}, f, indent=2)
    return result


def _train_loop(trainer, state, train_iter, checkpointer, writer, bar, result, start, eval_data):
    """Steps `start + 1 ... num_steps`; fills `result` (with `_state`); True if a signal stopped it."""
    tc = trainer.config.train
    step = start
    window, last_log_t, last_log_step = [], time.perf_counter(), start
    with ckpt_lib.StopSignal() as stop:
        for step in range(start + 1, tc.num_steps + 1):
            try:
                batch = next(train_iter)
            except StopIteration:
                warnings.warn(f"training data ran out at step {step - 1}", stacklevel=2)
                step -= 1
                break
            examples = len(jax.tree_util.tree_leaves(batch)[0]) * jax.process_count()
            state, m = trainer.train_step(state, trainer.shard(batch))
            window.append(m)
            bar.update(1)
            last = step == tc.num_steps
            saving = checkpointer.should_save(step) or last
            # Many hosts must agree to stop at the same step: they compare flags at log steps.
            check = jax.process_count() == 1 or step % tc.log_every == 0 or saving
            stopping = check and _any_process(bool(stop))
            if step % tc.log_every == 0 or saving or last or stopping:
                now = time.perf_counter()
                means = _flush(window, step)
                rate = (step - last_log_step) / max(now - last_log_t, 1e-9)
                means.update(steps_per_sec=rate, examples_per_sec=rate * examples)
                writer.write(step, "train", means)
                bar.set_postfix(loss=f"{means['loss']:.4f}", ex_s=f"{rate * examples:.0f}")
                result.update({f"train_{k}": v for k, v in means.items()})
                window, last_log_t, last_log_step = [], now, step
                checkpointer.check()  # a failed background write stops the run here
            if stopping:
                checkpointer.save(step, state, _data_state(train_iter), force=True)
                checkpointer.close()
                bar.close()
                writer.close()
                name = signal.Signals(stop.received).name if stop.received else "signal"
                print(f"stopped by {name} at step {step}; checkpoint saved", flush=True)
                result.update(step=step, interrupted=name, _state=state)
                return True
            if saving:
                checkpointer.save(step, state, _data_state(train_iter), force=last)
            if eval_data is not None and tc.eval_every and step % tc.eval_every == 0 and not last:
                for split, make_iter in _named_sets("eval", eval_data):
                    state, em = trainer.evaluate(state, make_iter, tc.eval_batches)
                    writer.write(step, split, em)
    result.update(step=step, _state=state)
    return False


def validate_train_config(tc) -> None:
    """Raise ValueError naming the `train.*` key whose value cannot work."""
    minimum = {"num_steps": 0, "log_every": 1, "eval_every": 0, "eval_batches": 0,
               "checkpoint_every": 0, "keep_checkpoints": 1}  # fmt: skip
    for key, low in minimum.items():
        value = tc[key]
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"config.train.{key} must be an integer >= {low}, got {value!r}")


def _resume_note(checkpointer) -> str:
    last = checkpointer.latest_step()
    if last is None:
        return "No checkpoint was written; a rerun starts from step 0."
    return (
        f"The last checkpoint, step {last} in {checkpointer.directory}, is finite (a "
        "non-finite state is never saved); a rerun resumes from it."
    )


def _named_sets(kind: str, data) -> list:
    """`[(split, factory)]` of `eval_data` / `test_data`: `[]` for None, `[(kind, data)]` for
    one factory, `[(f"{kind}_{name}", factory), ...]` for a dict of named sets."""
    if data is None:
        return []
    if not isinstance(data, dict):
        return [(kind, data)]
    for name, make_iter in data.items():
        if not isinstance(name, str) or not name or not callable(make_iter):
            raise ValueError(
                f"{kind}_data: a dict of named sets maps non-empty names to zero-argument "
                f"iterator factories; got {name!r}: {type(make_iter).__name__}"
            )
    return [(f"{kind}_{name}", make_iter) for name, make_iter in data.items()]


def _open_first_batch(make_iter) -> None:
    """Open an evaluation set and read its first batch (then drop it): a split that is missing
    or empty raises here, before any training, instead of after the last step."""
    iterator = make_iter()
    try:
        next(iterator)
    except StopIteration:
        raise ValueError("an evaluation set yielded no batches") from None
    finally:
        close = getattr(iterator, "close", None)
        if callable(close):
            close()


def _warm_start(state: TrainState, workdir: str) -> TrainState:
    """`state` with the params and model state of the newest checkpoint in `workdir`."""
    directory = os.path.join(workdir, "checkpoints")
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"init_from: no checkpoints in {directory}; train that run first")
    source = ckpt_lib.Checkpointer(directory, async_save=False)
    try:
        restored = source.restore(state)
    finally:
        source.close()
    if restored is None:
        raise FileNotFoundError(f"init_from: no readable checkpoint in {directory}")
    other = restored[0]
    if jax.process_index() == 0:
        print(f"starting from the params of {workdir} (its step {restored[2]})", flush=True)
    return state.replace(params=other.params, model_state=other.model_state)


def _flush(window, step: int) -> dict:
    """Fetch a window of per-step metrics, stop on a non-finite loss, return the means."""
    host = jax.device_get(window)
    first = step - len(host) + 1
    for i, m in enumerate(host):
        if not np.isfinite(m["loss"]):
            raise FloatingPointError(
                f"training loss is {float(m['loss'])} at step {first + i}; stopping. "
                "Try a lower optimizer.learning_rate, optimizer.grad_clip_norm, or float32."
            )
    keys = host[-1].keys()
    return {k: float(np.mean([m[k] for m in host])) for k in keys if k != "count"}


def _any_process(flag: bool) -> bool:
    """True if `flag` is set on any process (all processes must stop at the same step)."""
    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils

    return bool(np.any(multihost_utils.process_allgather(np.array(flag))))


def _init_args(init_batch):
    def head(x):
        return np.asarray(x)[:2]

    if isinstance(init_batch, dict):
        return (head(init_batch["inputs"]),)
    if isinstance(init_batch, tuple):
        return tuple(jax.tree_util.tree_map(head, a) for a in init_batch)
    return (head(init_batch),)


class _Chain:
    """Yield `first`, then the rest of `it`; position methods are forwarded to `it`."""

    def __init__(self, first, it):
        self._first, self._it = [first], it

    def __iter__(self):
        return self

    def __next__(self):
        return self._first.pop() if self._first else next(self._it)

    def get_state(self):
        return self._it.get_state()

    def set_state(self, s):
        self._first = []
        self._it.set_state(s)

    @property
    def resumable(self):
        return hasattr(self._it, "get_state") and hasattr(self._it, "set_state")


def _resumable(it) -> bool:
    return getattr(it, "resumable", hasattr(it, "get_state") and hasattr(it, "set_state"))


def _data_state(it):
    return it.get_state() if _resumable(it) else None


def _resume_data(train_iter, data_state, start: int):
    """Put the data iterator where the checkpointed run left it."""
    if _resumable(train_iter) and data_state is not None:
        train_iter.set_state(data_state)
        return train_iter
    warnings.warn(
        f"the training iterator has no get_state/set_state; skipping {start} batches to resume",
        stacklevel=3,
    )
    for _ in range(start):  # train_iter yields batch 1 (possibly peeked for init) onward
        next(train_iter)
    return train_iter


def _jsonable(v):
    if isinstance(v, np.ndarray | jnp.ndarray):
        return v.tolist()
    return v if isinstance(v, int | float | str | bool | type(None) | list | dict) else str(v)
