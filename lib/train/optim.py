"""Optimizers and learning-rate schedules from a config section (optax; AdamW: Loshchilov & Hutter, 2019)."""

import optax

_OPTIMIZERS = ("adamw", "adam", "sgd", "momentum", "lamb", "lion", "adafactor", "rmsprop")
_SCHEDULES = ("constant", "cosine", "warmup_cosine", "linear", "warmup_constant")


def make_schedule(opt_cfg, num_steps: int | None = None) -> optax.Schedule:
    """The learning-rate schedule named by `opt_cfg.schedule`.

    Args:
      opt_cfg: a ConfigDict (or any attribute/mapping) with `learning_rate`, `schedule` and
        optionally `warmup_steps` (default 0), `decay_steps` (default `num_steps`) and
        `end_learning_rate_factor` (final lr as a fraction of the peak; default 0).
      num_steps: the run length, the default horizon of decaying schedules.

    Returns:
      An optax schedule `step -> learning rate`.
    """
    get = _getter(opt_cfg)
    lr = float(get("learning_rate"))
    name = get("schedule", "constant")
    warmup = int(get("warmup_steps", 0) or 0)
    decay_steps = int(get("decay_steps", None) or num_steps or 0)
    end = lr * float(get("end_learning_rate_factor", 0.0) or 0.0)
    if name not in _SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; expected one of {list(_SCHEDULES)}")
    if name == "constant":
        return optax.constant_schedule(lr)
    if name == "warmup_constant":
        return optax.join_schedules(
            [optax.linear_schedule(0.0, lr, max(warmup, 1)), optax.constant_schedule(lr)], [warmup]
        )
    if decay_steps <= 0:
        raise ValueError(f"schedule {name!r} needs decay_steps or num_steps > 0")
    if name == "cosine":
        return optax.cosine_decay_schedule(lr, decay_steps, alpha=end / lr if lr else 0.0)
    if name == "linear":
        return optax.join_schedules(
            [
                optax.linear_schedule(0.0, lr, max(warmup, 1)),
                optax.linear_schedule(lr, end, max(decay_steps - warmup, 1)),
            ],
            [warmup],
        )
    return optax.warmup_cosine_decay_schedule(
        0.0, lr, warmup_steps=warmup, decay_steps=max(decay_steps, warmup + 1), end_value=end
    )


def make_optimizer(opt_cfg, num_steps: int | None = None) -> optax.GradientTransformation:
    """An optax optimizer with its schedule, weight decay and gradient clipping.

    Args:
      opt_cfg: a config section with `name` (one of adamw, adam, sgd, momentum, lamb, lion,
        adafactor, rmsprop), `learning_rate`, `schedule` (constant, cosine, warmup_cosine,
        linear, warmup_constant), `warmup_steps`, `weight_decay`, `grad_clip_norm` (0/None: off)
        and optionally `b1`, `b2`, `eps`, `momentum`, and `gradient_noise_eta` /
        `gradient_noise_gamma` (annealed Gaussian gradient noise, `lib.train.noise`; 0: off).
      num_steps: the run length (horizon of decaying schedules when `decay_steps` is unset).

    Returns:
      An optax `GradientTransformation`; clipping (global norm) is applied first, then the
      gradient noise (so the clip never shrinks the noise), then the optimizer.
    """
    get = _getter(opt_cfg)
    name = get("name", "adamw")
    schedule = make_schedule(opt_cfg, num_steps)
    wd = float(get("weight_decay", 0.0) or 0.0)
    b1, eps = float(get("b1", 0.9)), float(get("eps", 1e-8))
    b2 = float(get("b2", 0.99 if name == "lion" else 0.999))
    if name == "adamw":
        tx = optax.adamw(schedule, b1=b1, b2=b2, eps=eps, weight_decay=wd)
    elif name == "adam":
        tx = optax.adam(schedule, b1=b1, b2=b2, eps=eps)
    elif name in ("sgd", "momentum"):
        momentum = get("momentum", 0.9 if name == "momentum" else None)
        tx = optax.sgd(schedule, momentum=momentum)
    elif name == "lamb":
        tx = optax.lamb(schedule, b1=b1, b2=b2, eps=eps, weight_decay=wd)
    elif name == "lion":
        tx = optax.lion(schedule, b1=b1, b2=b2, weight_decay=wd)
    elif name == "adafactor":
        tx = optax.adafactor(schedule, weight_decay_rate=wd or None)
    elif name == "rmsprop":
        tx = optax.rmsprop(schedule, eps=eps)
    else:
        raise ValueError(f"unknown optimizer {name!r}; expected one of {list(_OPTIMIZERS)}")
    if wd and name in ("adam", "sgd", "momentum", "rmsprop"):
        tx = optax.chain(optax.add_decayed_weights(wd), tx)
    noise_eta = float(get("gradient_noise_eta", 0.0) or 0.0)
    if noise_eta:
        gamma = float(get("gradient_noise_gamma", 0.55))
        tx = optax.chain(_checkpointable_noise(noise_eta, gamma), tx)
    clip = get("grad_clip_norm", None)
    if clip:
        tx = optax.chain(optax.clip_by_global_norm(float(clip)), tx)
    return tx


def _checkpointable_noise(eta: float, gamma: float) -> optax.GradientTransformation:
    """`lib.train.noise.annealed_gradient_noise` whose state keeps its PRNG key as raw uint32
    key data: optax holds a typed key, which a checkpoint restores with another shape. (A
    typed key put into the state, e.g. by `reseed_noise`, is used and kept as it is.)"""
    import jax

    from lib.train.noise import annealed_gradient_noise

    inner = annealed_gradient_noise(eta, gamma, 0)

    def typed(key):
        return jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)

    def init(params):
        state = inner.init(params)
        return state._replace(rng_key=jax.random.key_data(state.rng_key))

    def update(updates, state, params=None):
        raw = not typed(state.rng_key)
        key = jax.random.wrap_key_data(state.rng_key) if raw else state.rng_key
        updates, state = inner.update(updates, state._replace(rng_key=key), params)
        return updates, state._replace(
            rng_key=jax.random.key_data(state.rng_key) if raw else state.rng_key
        )

    return optax.GradientTransformation(init, update)


def _getter(cfg):
    """A `get(key, default)` over a ConfigDict, a dict or an object with attributes."""

    def get(key, *default):
        if hasattr(cfg, "get"):
            if default:
                return cfg.get(key, default[0])
            if key not in cfg:
                raise KeyError(f"optimizer config needs {key!r}")
            return cfg[key]
        if default:
            return getattr(cfg, key, default[0])
        return getattr(cfg, key)

    return get
